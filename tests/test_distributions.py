"""Distribution specs: sample mean and CV against the spec, bad specs rejected with one line."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.distributions import STREAM_CHUNK, SpecError, Stream, parse

N = 400_000
Z = 5.0  # standard errors allowed: a seeded test fails only on a real bias


# Specs whose fourth moment is finite, so the sample CV has a computable standard error.
MOMENT_SPECS = [
    "const:2.5",
    "uniform:0:5",
    "uniform:1:3",
    "exp:2.5",
    "erlang:3:2.5",
    "gamma:2.5:0.5",
    "gamma:2.5:2",
    "lognormal:2.5:0.5",
    "lognormal:2.5:1",
    "weibull:2.5:0.5",
    "weibull:2.5:1.5",
    "pareto:2.5:6",
    "hyperexp:2.5:2",
]


def _standard_errors(x: np.ndarray) -> tuple[float, float]:
    """Standard errors of the sample mean and of the sample CV (delta method on s^2)."""
    n, mean, sd = x.size, x.mean(), x.std()
    m4 = np.mean((x - mean) ** 4)
    se_mean = sd / math.sqrt(n)
    se_sd = math.sqrt(max(m4 - sd**4, 0.0) / n) / (2 * sd) if sd > 0 else 0.0
    cv = sd / mean
    se_cv = cv * math.sqrt((se_sd / sd) ** 2 + (se_mean / mean) ** 2) if sd > 0 else 0.0
    return se_mean, se_cv


@pytest.mark.parametrize("spec", MOMENT_SPECS)
def test_sample_mean_and_cv_match_the_spec(spec):
    dist = parse(spec)
    x = dist.sample(np.random.default_rng(20261125), N)
    se_mean, se_cv = _standard_errors(x)
    assert abs(x.mean() - dist.mean) <= Z * se_mean + 1e-12
    assert abs(x.std() / x.mean() - dist.cv) <= Z * se_cv + 1e-12


@pytest.mark.parametrize("spec", ["pareto:2.5:1.5", "lognormal:2.5:1.5"])
def test_heavy_tails_have_the_right_median(spec):
    # Their sample mean converges too slowly to test tightly; the median has an exact formula.
    dist = parse(spec)
    x = dist.sample(np.random.default_rng(7), N)
    if dist.family == "pareto":
        alpha = 1.5
        xm = dist.mean * (alpha - 1) / alpha
        median = xm * 2 ** (1 / alpha)
    else:
        sigma2 = math.log1p(dist.cv**2)
        median = math.exp(math.log(dist.mean) - sigma2 / 2)
    # sample median SE = 1 / (2 f(m) sqrt(n)); check through the CDF instead: P(X <= m) = 0.5 +- Z*0.5/sqrt(n)
    assert abs(np.mean(x <= median) - 0.5) <= Z * 0.5 / math.sqrt(N)


@pytest.mark.parametrize(
    ("spec", "mean", "cv"),
    [
        ("const:1", 1.0, 0.0),
        ("uniform:0:5", 2.5, 5 / math.sqrt(12) / 2.5),
        ("exp:2.5", 2.5, 1.0),
        ("erlang:4:2", 2.0, 0.5),
        ("gamma:3:0.7", 3.0, 0.7),
        ("lognormal:2.5:1.5", 2.5, 1.5),
        ("weibull:2:0.3", 2.0, 0.3),
        ("pareto:2:3", 2.0, 1 / math.sqrt(3)),
        ("pareto:2:1.5", 2.0, None),
        ("hyperexp:1:3", 1.0, 3.0),
    ],
)
def test_parsed_mean_and_cv(spec, mean, cv):
    dist = parse(spec)
    assert dist.mean == pytest.approx(mean)
    assert (dist.cv is None) if cv is None else dist.cv == pytest.approx(cv, rel=1e-6)


def test_spec_is_canonical_and_round_trips():
    dist = parse(" Exp:2.50 ")
    assert dist.spec == "exp:2.5"
    assert parse(dist.spec).spec == dist.spec
    assert parse("uniform:0:5").spec == "uniform:0:5"


def test_distributions_pickle_by_spec():
    dist = parse("lognormal:2.5:1.5")
    clone = pickle.loads(pickle.dumps(dist))
    rng1, rng2 = np.random.default_rng(3), np.random.default_rng(3)
    assert clone.spec == dist.spec
    assert np.array_equal(clone.sample(rng1, 10), dist.sample(rng2, 10))


def test_stream_gives_the_same_numbers_one_by_one_or_in_blocks():
    dist = parse("exp:1")
    one = Stream(dist, np.random.default_rng(11))
    block = Stream(dist, np.random.default_rng(11))
    n = STREAM_CHUNK * 2 + 17
    singles = np.array([one.next() for _ in range(n)])
    assert np.array_equal(singles, np.concatenate([block.take(5), block.take(n - 5)]))


def test_stream_gives_the_same_numbers_when_next_and_take_are_mixed():
    dist = parse("uniform:0:5")
    one = Stream(dist, np.random.default_rng(12))
    mixed = Stream(dist, np.random.default_rng(12))
    n = STREAM_CHUNK * 3 + 5
    singles = np.array([one.next() for _ in range(n)])
    parts = [mixed.take(10), [mixed.next() for _ in range(STREAM_CHUNK)], mixed.take(STREAM_CHUNK + 3)]
    parts.append([mixed.next() for _ in range(n - 2 * STREAM_CHUNK - 13)])
    assert np.array_equal(singles, np.concatenate(parts))


BAD_SPECS = [
    ("", "empty"),
    ("normal:1:2", "unknown family"),
    ("exp", "takes 1 parameter"),
    ("exp:1:2", "takes 1 parameter"),
    ("uniform:1", "takes 2 parameter"),
    ("exp:abc", "not a number"),
    ("exp:nan", "not finite"),
    ("exp:inf", "not finite"),
    ("exp:-1", "must be > 0"),
    ("exp:0", "must be > 0"),
    ("const:0", "must be > 0"),
    ("uniform:5:0", "HIGH must be above LOW"),
    ("uniform:-1:5", "LOW must be >= 0"),
    ("erlang:2.5:1", "whole number"),
    ("erlang:0:1", "whole number"),
    ("gamma:1:0", "CV must be"),
    ("gamma:1:-2", "CV must be"),
    ("lognormal:1:1000", "CV must be"),
    ("hyperexp:1:0.5", "CV must be"),
    ("weibull:1:0", "CV must be"),
    ("pareto:1:1", "ALPHA must be > 1"),
    ("empirical:", "takes a file path"),
    ("empirical:/no/such/file.csv", "not found"),
]


@pytest.mark.parametrize(("spec", "why"), BAD_SPECS)
def test_bad_specs_are_rejected_with_one_line_naming_the_spec(spec, why):
    with pytest.raises(SpecError) as caught:
        parse(spec)
    message = str(caught.value)
    assert why in message
    assert "\n" not in message
    assert repr(spec.strip()) in message or spec == ""


def test_empirical_resamples_a_csv_column(tmp_path):
    path = tmp_path / "durations.csv"
    path.write_text("job,seconds\na,1.0\nb,2.0\nc,3.0\nd,\ne,6.0\n")  # an empty cell is skipped
    dist = parse(f"empirical:{path}#seconds")
    assert dist.mean == pytest.approx(3.0)
    x = dist.sample(np.random.default_rng(1), 10_000)
    assert set(np.unique(x)) == {1.0, 2.0, 3.0, 6.0}


def test_empirical_reads_the_first_numeric_parquet_column(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"name": ["a", "b"], "d": [2.0, 4.0]}), path)
    dist = parse(f"empirical:{path}")
    assert dist.mean == pytest.approx(3.0)
    assert dist.cv == pytest.approx(1 / 3)


def test_empirical_file_without_valid_numbers_is_rejected(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("x\n\n0\n")
    with pytest.raises(SpecError, match="no valid durations"):
        parse(f"empirical:{path}")


@pytest.mark.parametrize("text", ["foo", "-1", "nan", "inf", "1_0", "0x10"])
def test_empirical_file_with_a_bad_value_is_refused_naming_its_row(tmp_path, text):
    """Refused, not dropped: dropping bad rows silently would change the distribution."""
    path = tmp_path / "bad.csv"
    path.write_text(f"x\n1.5\n{text}\n2.5\n")
    with pytest.raises(SpecError, match=rf"1 bad value\(s\) .*\(row 3: '{text}'\)"):
        parse(f"empirical:{path}")


def test_empirical_parquet_with_a_bad_value_is_refused(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"d": [2.0, float("nan"), -4.0]}), path)
    with pytest.raises(SpecError, match="2 bad value"):
        parse(f"empirical:{path}")


def test_empirical_records_the_files_hash_and_its_largest_value(tmp_path):
    import hashlib

    path = tmp_path / "d.csv"
    path.write_text("1.5\n4.0\n")
    dist = parse(f"empirical:{path}")
    assert dist.high == 4.0
    assert dist.inputs == ((str(path.resolve()), hashlib.sha256(path.read_bytes()).hexdigest()),)


def test_bad_values_are_named_by_their_line_or_row_in_the_file(tmp_path):
    """Blank lines and null cells are skipped, but they still count when a bad value is named."""
    csv_file = tmp_path / "d.csv"
    csv_file.write_text("d\n1\n\n2\n-3\nabc\n4\n")
    with pytest.raises(SpecError, match=r"\(row 5: '-3', row 6: 'abc'\)"):
        parse(f"empirical:{csv_file}")
    parquet_file = tmp_path / "d.parquet"
    pq.write_table(pa.table({"d": [None, None, None, 1.0, 2.0, -5.0, 3.0]}), parquet_file)
    with pytest.raises(SpecError, match=r"\(row 6: -5\)"):
        parse(f"empirical:{parquet_file}")


def test_an_empirical_file_larger_than_its_bound_is_refused(tmp_path, monkeypatch):
    from bench import distributions

    monkeypatch.setattr(distributions, "MAX_EMPIRICAL_BYTES", 1000)
    path = tmp_path / "d.csv"
    path.write_text("1.5\n" * 300)
    with pytest.raises(SpecError, match="larger than"):
        parse(f"empirical:{path}")


def test_sibling_streams_are_keyed_by_name_and_leave_their_parent_alone():
    def parent():
        return Stream(parse("exp:1"), np.random.Generator(np.random.PCG64(np.random.SeedSequence(5, spawn_key=(7, 0)))))

    untouched = parent().take(100)
    one = parent()
    first = one.sibling("patience/0", parse("exp:3")).take(1000)
    assert np.array_equal(one.take(100), untouched)  # drawing a sibling does not move the parent
    assert np.array_equal(parent().sibling("patience/0", parse("exp:3")).take(1000), first)  # same name, same numbers
    other = parent().sibling("class/0", parse("exp:3")).take(1000)
    assert not np.array_equal(first, other)
    assert abs(np.corrcoef(first, other)[0, 1]) < 4 / np.sqrt(1000)  # independent streams: no correlation
    assert abs(first.mean() - 3) < 4 * 3 / np.sqrt(1000)


def test_a_merged_spec_has_one_part_per_pusher_and_the_merged_mean():
    merged = parse("exp:2 + exp:3")
    assert merged.spec == "exp:2+exp:3" and [p.spec for p in merged.parts] == ["exp:2", "exp:3"]
    assert merged.mean == pytest.approx(1 / (1 / 2 + 1 / 3)) and merged.cv == 1.0
    assert parse("exp:2+const:3").cv is None  # a superposition of non-Poisson streams is not renewal
