"""``qbench plan``: the fewest workers that meet targets, with stated confidence; and its inverse, the
largest load that N workers carry (headroom).

This module holds the statistics and the decisions; the simulation is a callback
(``simulate(workers, scale, replications) -> list[Sample]``, built by ``bench/sampling.py``), so the
analysis never runs an engine. Every figure is the steady-state estimate of
:mod:`analysis.quantiles` (MSER-5 warm-up on the ensemble, pooled point estimate, sectioning
interval), the same the report and compare show.

**Verdicts.** For a candidate and a target ``metric <= v`` with its interval ``[low, high]`` at the
plan's confidence: *meets* when ``high <= v``, *fails* when ``low > v``, *undecided* otherwise (for
``utilisation >= v``: meets when ``low >= v``, fails when ``high < v``). A candidate meets when
every target does, fails when one fails. A *meets* from runs whose warm-up never ended (no steady
state reached) counts as undecided: a queue started empty shows waits that are too short.

**The fewest workers.** Theory brackets the answer: no count ``c <= lam E[S]`` has a steady state
(the backlog grows; such counts fail without simulation), and Allen-Cunneen's two-moment
approximation (exact for M/M/c) names a first guess. Simulation then confirms, with common random
numbers across worker counts (replication r of every count sees the same arrivals and the same
work). Worker counts are searched monotonically: an upper-bound target (``<=``) failed at c fails
at every count below c, one met at c is met at every count above, so the answer is the ``c`` that
meets with ``c - 1`` failing; the search gallops up from the guess until a count meets, then
bisects. A candidate whose interval straddles a threshold gets more replications, doubling, until
every target is decided or the budget (items simulated, or seconds) is spent. A lower bound on
utilisation is met by fewer workers, not more: it is checked at the fewest count that meets the
upper bounds, and if it fails there no count meets.

**Monotonicity is checked, not assumed.** Under common random numbers a FIFO queue with one worker
more never makes any item wait longer (the Kiefer-Wolfowitz workload vector is monotone in the
number of servers), so each replication's wait and sojourn statistics and its mean queue length
can only fall as workers are added (and rise with the load). Every pair of candidates is checked
replication by replication; a violation (a bounded queue, whose blocked pusher changes the
arrival times, can produce one) is reported, and so is a verdict out of order.

**Budget.** ``Budget(items=N)`` stops before a replication would take the items simulated past N;
``Budget(seconds=S)`` stops once S seconds of simulation have passed (machine-dependent, so not
reproducible; an items budget is). When it ends undecided the plan says so and gives the
conservative answer (the fewest count shown to meet every target) and the count left undecided.

**Arrivals that change over time** (a schedule, a daily cycle, a trace: ``Model.stationary``
false) have no steady state. A plan then sizes for the whole run: each replication puts the
arrivals of one horizon (a period, the schedule's span, the trace) and drains, and every target is
judged over all of its items (no warm-up cut), so ``wait_p99<=15`` means the p99 over the day's
items, the peak hours included, not the mean rate's steady state. Theory's first guess is
Allen-Cunneen at the peak rate (a Poisson process: a CV of 1); counts below it are simulated, not
ruled out.

**Elastic workers** (``auto:...`` candidates) are judged beside the answer: each gets the same
replications (common random numbers) and its verdict, and every candidate's cost in worker-seconds
(the workers provisioned over each replication, mean with its interval) is shown, so "12 fixed"
and "auto 4-16" compare on targets and on cost.

**Max load.** For N workers, the largest factor ``s`` by which the arrival rate can be multiplied
(inter-arrival times divided by ``s``, the same draws scaled: common random numbers across loads)
with the targets still met: ``s < N / (lam E[S])`` by stability, a first guess from theory, then
bisection (geometric) between the largest factor shown to meet and the smallest shown to fail,
until they are within :data:`TOLERANCE` of each other. A factor left undecided is treated as not
shown to meet (conservative).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.estimate import Estimate, mean_ci
from analysis.quantiles import Sample, Steady, estimates
from analysis.tables import Rows, to_text
from analysis.theory import erlang_c, stable_workers, wait_quantile
from bench.results_format import Target

__all__ = [
    "Budget", "Candidate", "Model", "Plan", "RunAnswer", "Simulate", "SimulateElastic", "TOLERANCE", "Verdict",
    "answer_line", "elastic_lines", "evaluate", "items_per_replication", "judge_elastic", "load_guess",
    "plan_max_load", "plan_workers", "plan_json", "plan_rows", "plan_table",
    "run_answers", "run_length", "run_targets", "target_series", "theory_guess",
]  # fmt: skip

#: simulate(workers, scale, replications) -> one Sample per replication id (in that order).
Simulate = Callable[[int, float, range], list[Sample]]

#: Replications every candidate starts with (t with 9 degrees of freedom: 2.26 at 95%).
FIRST_REPLICATIONS = 10
#: Max load: bisection ends when the factors shown to meet and to fail are within 2% of each other.
TOLERANCE = 0.02
#: Max load: a factor still undecided at this many replications is treated as not shown to meet.
MAX_LOAD_REPLICATIONS = 4 * FIRST_REPLICATIONS
#: Run length bounds, items per replication.
MIN_ITEMS, MAX_ITEMS = 20_000, 1_000_000
#: Most item values one candidate holds in memory (8 bytes each: 480 MB). A candidate whose next
#: replication would pass it is not grown, as if the budget were spent; a decided candidate's
#: items are let go (its estimates are kept).
MAX_HELD_VALUES = 60_000_000


@dataclass(frozen=True)
class Model:
    """One (arrival, service, maxsize) to plan for, as the theory needs it.

    Attributes:
        arrival: the arrival spec. service: the service spec. maxsize: the queue bound (0 = none).
        lam: arrival rate, items/s (``1 / arrival_mean``).
        mean_s: mean service time, s.
        scv_a: squared CV of inter-arrival times (None where undefined).
        scv_s: squared CV of service times (None where undefined).
        service_sample: draws of the service time, for the theory's sojourn guess (optional).
        stability: whether ``c <= lam E[S]`` means no steady state (True for the plain pool and for
            behaviours that only add work; False where items may leave unserved, e.g. patience, and
            for arrivals that change over time, whose runs are one horizon long).
        stationary: the arrival process is stationary (False: targets are over the whole run).
        peak: the arrival process's highest rate, items/s (None for a distribution).
        horizon: a non-stationary process's span of arrivals per replication, s (None otherwise).
    """

    arrival: str
    service: str
    maxsize: int
    lam: float
    mean_s: float
    scv_a: float | None
    scv_s: float | None
    service_sample: np.ndarray | None = field(default=None, repr=False, compare=False)
    stability: bool = True
    stationary: bool = True
    peak: float | None = None
    horizon: float | None = None

    @property
    def fewest(self) -> int:
        """The fewest count that may have a steady state (:func:`stable_workers`, or 1)."""
        return stable_workers(self.lam, self.mean_s) if self.stability else 1

    @property
    def load(self) -> float:
        """Offered load ``lam E[S]``, Erlangs."""
        return self.lam * self.mean_s

    @property
    def label(self) -> str:
        """``arrival exp:1, service lognormal:2.5:1.5`` (and the bound of a bounded queue)."""
        return f"arrival {self.arrival}, service {self.service}" + (f", maxsize {self.maxsize}" if self.maxsize else "")


@dataclass(frozen=True)
class Budget:
    """How much simulation a plan may spend: items simulated, or seconds of simulation."""

    items: int | None = None
    seconds: float | None = None

    def __str__(self) -> str:
        return f"{self.seconds:g} s" if self.seconds is not None else f"{self.items:,} items"


#: A plan's default budget: 20 million items, a few seconds on the recurrence engine and about a
#: minute and a half on the asyncio engine; reproducible (a budget in seconds is not).
DEFAULT_BUDGET = Budget(items=20_000_000)


@dataclass(frozen=True)
class Verdict:
    """One target at one candidate: the estimate, its interval and the verdict.

    Attributes:
        target: the target.
        steady: the steady-state estimate (None when decided by theory).
        verdict: ``meets``, ``fails`` or ``undecided``.
        note: why, when it is not plain (e.g. no steady state reached).
    """

    target: Target
    steady: Steady | None
    verdict: str
    note: str = ""


@dataclass
class Candidate:
    """One worker count (or load factor) tried.

    Attributes:
        workers: the worker count. scale: the arrival-rate factor (1 for the workers question).
        verdict: ``meets``, ``fails``, ``undecided`` or ``unstable`` (decided by theory: no steady state).
        targets: per target, its verdict (empty for an unstable candidate).
        replications: replications simulated.
        items: items simulated.
        cut: the warm-up cut, items per replication.
        settled: the warm-up ended within the runs.
        cost: worker-seconds per replication (mean, interval), when the replications report them.
        spec: elastic workers' spec (``auto:...``); None for a fixed count.
    """

    workers: int
    scale: float = 1.0
    verdict: str = "undecided"
    targets: list[Verdict] = field(default_factory=list)
    replications: int = 0
    items: int = 0
    cut: int = 0
    settled: bool = True
    cost: Estimate | None = None
    spec: str | None = None

    @property
    def label(self) -> str:
        """``12`` for a fixed count, ``auto 4-16`` for elastic workers."""
        if self.spec is None:
            return str(self.workers)
        words = dict(w.split("=", 1) for w in self.spec[len("auto:") :].split(",") if "=" in w)
        return f"auto {words.get('min', '?')}-{words.get('max', self.workers)}"

    @property
    def ceiling(self) -> str:
        """The verdict on the upper-bound targets (``<=``) alone."""
        return _combine([v for v in self.targets if v.target.op == "<="], self.verdict)

    @property
    def floor(self) -> str:
        """The verdict on the lower-bound targets (``>=``) alone (``meets`` when there are none)."""
        return _combine([v for v in self.targets if v.target.op == ">="], self.verdict)

    def failing(self) -> list[str]:
        """The metrics of the targets that fail."""
        return [v.target.metric for v in self.targets if v.verdict == "fails"]

    def undecided(self) -> list[str]:
        """The metrics of the targets left undecided."""
        return [v.target.metric for v in self.targets if v.verdict == "undecided"]


def _combine(verdicts: list[Verdict], whole: str) -> str:
    if whole == "unstable":
        return "fails"
    if not verdicts:
        return "meets"
    said = {v.verdict for v in verdicts}
    return "fails" if "fails" in said else "undecided" if "undecided" in said else "meets"


@dataclass
class Plan:
    """The outcome of a plan (either question).

    Attributes:
        model: what was planned for. targets: the targets. confidence: the intervals' level.
        question: ``workers`` (the fewest workers) or ``max-load`` (headroom of ``workers``).
        candidates: every worker count (or load factor) tried, in the order tried.
        answer: the fewest workers (decided, or the conservative answer when undecided); for
            max-load the worker count asked about. None when no count up to the limit meets.
        decided: every verdict the answer rests on was decided.
        conservative: the fewest count shown to meet every target (None if none).
        undecided: the count below it left undecided (None if none).
        reason: one sentence: why the answer is what it is.
        notes: monotonicity checks and other remarks.
        monotone: no monotonicity violation was seen.
        budget: the budget. spent_items, spent_seconds: what was used.
        items_per_replication: run length. max_workers: the search's limit.
        load: max-load: the largest factor shown to meet (None if none). load_interval: between it and
            the smallest factor shown to fail.
    """

    model: Model
    targets: tuple[Target, ...]
    confidence: float
    question: str
    candidates: list[Candidate] = field(default_factory=list)
    answer: int | None = None
    decided: bool = False
    conservative: int | None = None
    undecided: int | None = None
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    monotone: bool = True
    budget: Budget = DEFAULT_BUDGET
    spent_items: int = 0
    spent_seconds: float = 0.0
    items_per_replication: int = 0
    max_workers: int = 0
    guess: int | float | None = None
    budget_spent: bool = False
    load: float | None = None
    load_interval: tuple[float, float] | None = None
    elastic: list[Candidate] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        """0 with an answer, 1 without (no count up to the limit meets, or no load does)."""
        found = self.load if self.question == "max-load" else self.answer
        return 0 if found is not None else 1


# -- evaluating one candidate ------------------------------------------------------------------------


def evaluate(samples: Sequence[Sample], targets: Sequence[Target], confidence: float, workers: int,
             scale: float = 1.0) -> Candidate:  # fmt: skip
    """The verdict of one candidate from its replications (see the module docstring).

    Args:
        samples: its replications.
        targets: the targets (all must hold).
        confidence: the intervals' level.
        workers: its worker count.
        scale: its arrival-rate factor.
    """
    found, cut = estimates(samples, [t.metric for t in targets], confidence)
    verdicts = [_judge(t, found[t.metric], cut.settled) for t in targets]
    costs = [s.worker_seconds for s in samples]
    cost = mean_ci(np.array(costs, dtype=float), confidence) if costs and None not in costs else None
    candidate = Candidate(workers, scale, targets=verdicts, replications=len(samples),
                          items=sum(s.items for s in samples), cut=cut.index, settled=cut.settled,
                          cost=cost)  # fmt: skip
    said = {v.verdict for v in verdicts}
    candidate.verdict = "fails" if "fails" in said else "undecided" if "undecided" in said else "meets"
    return candidate


def _judge(target: Target, steady: Steady, settled: bool) -> Verdict:
    est = steady.estimate
    if math.isnan(est.low) or math.isnan(est.high):
        return Verdict(target, steady, "undecided", "no interval (fewer than 2 replications with data)")
    upper = target.op == "<="
    if (upper and est.low > target.value) or (not upper and est.high < target.value):
        return Verdict(target, steady, "fails")
    if (upper and est.high <= target.value) or (not upper and est.low >= target.value):
        if not settled:
            return Verdict(target, steady, "undecided", "no steady state within the runs (longer runs needed)")
        return Verdict(target, steady, "meets")
    return Verdict(target, steady, "undecided", "the interval straddles the threshold")


# -- theory: the bracket and the run length ------------------------------------------------------------


def _predict(model: Model, target: Target, c: int, scale: float = 1.0) -> float | None:
    """Allen-Cunneen's two-moment prediction of a target's metric at c workers (None where the
    theory has none: an undefined CV, or no steady state)."""
    lam = model.lam * scale
    scv_a = model.scv_a
    if not model.stationary and model.peak is not None:  # sized for the peak, Poisson within it
        lam, scv_a = model.peak * scale, 1.0 if scv_a is None else scv_a
    if target.quantity == "abandon":  # without patience nothing is abandoned; with it, no closed form here
        return 0.0 if model.stability else None
    if lam * model.mean_s >= c:
        return None
    if target.quantity == "utilisation":
        return lam * model.mean_s / c
    if scv_a is None or model.scv_s is None:
        return None
    spread = (scv_a + model.scv_s) / 2.0
    p_wait = erlang_c(c, lam * model.mean_s)
    rate = c / model.mean_s - lam
    wq = p_wait * spread / rate
    level = target.level
    if target.metric == "wait_mean":
        return wq
    if target.metric == "sojourn_mean":
        return wq + model.mean_s
    if target.quantity == "depth":
        return lam * wq
    assert level is not None  # a percentile of wait or sojourn
    if target.quantity == "wait":
        return wait_quantile(lam, model.mean_s, c, level, scv_a, model.scv_s)
    if model.service_sample is None or spread <= 0:
        return wait_quantile(lam, model.mean_s, c, level, scv_a, model.scv_s) + model.mean_s
    rng = np.random.default_rng(0)  # the guess is reproducible
    service = model.service_sample
    waits = np.where(rng.random(len(service)) < p_wait, rng.exponential(spread / rate, len(service)), 0.0)
    return float(np.quantile(service + waits, level, method="inverted_cdf"))


def theory_guess(model: Model, targets: Sequence[Target], max_workers: int) -> int | None:
    """The fewest workers that meet every upper-bound target by Allen-Cunneen's approximation (exact
    for M/M/c), from the fewest stable count up to ``max_workers``; None when the theory has no
    prediction (an undefined CV) or no count up to the limit meets."""
    upper = [t for t in targets if t.op == "<="]
    first = model.fewest
    if not model.stationary and model.peak is not None:  # the guess sizes for the peak rate
        first = max(first, stable_workers(model.peak, model.mean_s))
    for c in range(first, max_workers + 1):
        predicted = [_predict(model, t, c) for t in upper]
        if any(p is None for p in predicted):
            return None
        if all(t.holds(p) for t, p in zip(upper, predicted) if p is not None):
            return c
    return None


def load_guess(model: Model, targets: Sequence[Target], workers: int) -> float | None:
    """The largest load factor at which ``workers`` meet every upper-bound target by Allen-Cunneen's
    approximation (bisection below the stability limit); None where the theory has no prediction."""
    upper = [t for t in targets if t.op == "<="]
    ceiling = workers / model.load

    def meets(scale: float) -> bool | None:
        predicted = [_predict(model, t, workers, scale) for t in upper]
        if any(p is None for p in predicted):
            return None
        return all(t.holds(p) for t, p in zip(upper, predicted) if p is not None)

    low, high = 0.0, ceiling
    if meets(ceiling * 1e-3) is not True:
        return None
    low = ceiling * 1e-3
    for _ in range(60):
        mid = (low + high) / 2
        said = meets(mid)
        if said is None:
            return None
        low, high = (mid, high) if said else (low, mid)
    return low


def run_length(model: Model, targets: Sequence[Target], *, max_workers: int = 1000, workers: int | None = None) -> int:
    """The run length (items per replication) a plan chooses: :func:`items_per_replication` at the
    busiest candidate it expects to simulate: one worker fewer than theory's guess for the workers
    question, or ``workers`` just above the guessed load for max-load (``workers`` given).

    Args:
        model: the queue.
        targets: the targets.
        max_workers: the workers question's limit.
        workers: the worker count of a max-load question (None for the workers question).
    """
    if workers is not None:
        start = _load_start(model, targets, workers)
        return items_per_replication(model, targets, workers, min(1.1 * start, workers / model.load))
    fewest = model.fewest
    guess = theory_guess(model, targets, max_workers)
    start = fewest if guess is None else guess
    return items_per_replication(model, targets, max(fewest, min(start - 1, max_workers)))


def _load_start(model: Model, targets: Sequence[Target], workers: int) -> float:
    """The first load factor a max-load search tries: theory's guess, below 99% of the stability limit."""
    ceiling = workers / model.load
    guess = load_guess(model, targets, workers)
    return min(guess if guess is not None else 0.5 * ceiling, 0.99 * ceiling)


def items_per_replication(model: Model, targets: Sequence[Target], workers: int, scale: float = 1.0) -> int:
    """How many items each replication puts: long against the queue's relaxation time, and with
    enough items beyond the highest percentile asked.

    ``max(20,000, 800 / (1 - q), 400 lam tau)`` rounded up to a thousand and at most 1,000,000, where
    ``q`` is the highest percentile level of a target (a p99 sees 800 items beyond it per replication:
    80,000 items) and ``tau = E[S] / c * (ca^2 + cs^2) / 2 / (1 - sqrt(rho))^2`` is the relaxation
    time of the queue's wait (Morse's M/M/1 form, with Allen-Cunneen's variability factor and c
    servers sharing the work) at the given worker count (the busiest the plan expects to simulate).
    Measured: with 10 replications of this length, the 95% sectioning interval of the p99 wait
    covered the exact M/M/3 value (rho = 0.83) in 93% of 200 independent trials and a long-run
    reference of exp:1 / lognormal:2.5:1.5 with 4 workers in 96%; runs of an eighth of that length
    covered in 84-87%: a quantile of a short run is skewed and its interval too narrow.

    Args:
        model: the queue.
        targets: the targets.
        workers: the worker count the run length is sized for.
        scale: the arrival-rate factor.
    """
    levels = [t.level for t in targets if t.level is not None]
    tail = 800.0 / (1.0 - max(levels)) if levels else 0.0
    lam = model.lam * scale
    rho = lam * model.mean_s / workers
    relax = 0.0
    if rho < 1:
        # an undefined CV (a Pareto tail) counts as a CV of 2: long runs, not an error
        scv_a = model.scv_a if model.scv_a is not None else 4.0
        scv_s = model.scv_s if model.scv_s is not None else 4.0
        spread = (scv_a + scv_s) / 2
        relax = lam * model.mean_s / workers * max(spread, 0.05) / (1.0 - math.sqrt(rho)) ** 2
    wanted = max(MIN_ITEMS, tail, 400.0 * relax)
    return int(min(MAX_ITEMS, math.ceil(wanted / 1000.0) * 1000))


# -- the search ------------------------------------------------------------------------------------------


class _BudgetSpent(Exception):
    """The budget cannot pay for another replication."""


class _Search:
    """Samples, evaluations, budget and monotonicity checks shared by both questions."""

    def __init__(self, plan: Plan, simulate: Simulate, progress: bool) -> None:
        from tqdm import tqdm

        self.plan = plan
        self.simulate = simulate
        self.samples: dict[tuple[int, float], list[Sample]] = {}
        self.counts: dict[tuple[int, float], int] = {}  # replications run (their items may be let go)
        self.beyond: bool | None = None  # a sojourn target beyond the service time (decided once)
        self.raw: dict[tuple[int, float], dict[str, dict[int, float]]] = {}
        self.evaluated: dict[tuple[int, float], Candidate] = {}
        self.start = time.monotonic()
        budget = plan.budget
        total = budget.seconds if budget.seconds is not None else budget.items
        unit = "s" if budget.seconds is not None else "item"
        self.bar = tqdm(total=total, desc="plan", unit=unit, unit_scale=budget.seconds is None, disable=not progress,
                        leave=False)  # fmt: skip
        self.seen_violations: set[tuple[str, int, int]] = set()

    def close(self) -> None:
        self.bar.close()
        self.plan.spent_seconds = time.monotonic() - self.start

    def _affordable(self, held: list[Sample]) -> bool:
        budget, plan = self.plan.budget, self.plan
        values = sum(len(column) for s in held[:1] for column in s.columns.values())
        if held and values * (len(held) + 1) > MAX_HELD_VALUES:
            note = f"a candidate reached the memory bound ({MAX_HELD_VALUES:,} item values held) before it was decided"
            if note not in plan.notes:
                plan.notes.append(note)
            return False
        if budget.seconds is not None:
            return time.monotonic() - self.start < budget.seconds
        assert budget.items is not None
        return plan.spent_items + plan.items_per_replication <= budget.items

    def grow(self, key: tuple[int, float], replications: int) -> Candidate:
        """Simulate ``key`` up to ``replications`` replications (as far as the budget allows) and
        evaluate it; raises :class:`_BudgetSpent` when not one more replication could be paid for."""
        have = self.samples.setdefault(key, [])
        grown = False
        while self.counts.get(key, 0) < replications:
            if not self._affordable(have):
                break
            workers, scale = key
            done = self.counts.get(key, 0)
            self.bar.set_postfix_str(f"{workers} workers" + (f" x{scale:.4g} load" if self.plan.question == "max-load"
                                                             else "") + f", replication {done + 1}")  # fmt: skip
            before = time.monotonic()
            new = self.simulate(workers, scale, range(done, done + 1))
            spent = sum(s.items for s in new)
            self.plan.spent_items += spent
            have.extend(new)
            self.counts[key] = done + len(new)
            self._record_raw(key, new)
            grown = True
            if self.plan.budget.seconds is not None:
                self.bar.update(time.monotonic() - before)
            else:
                self.bar.update(spent)
        if not have and key not in self.evaluated:
            raise _BudgetSpent
        if grown:
            candidate = evaluate(have, self.plan.targets, self.plan.confidence, key[0], key[1])
            self.evaluated[key] = candidate
            self._store(candidate)
            self._check_monotone()
            if self.beyond is None:
                self.beyond = _service_limit(self, have)
            if not candidate.undecided():
                self.samples[key] = []  # decided: never grown again, its items can go
        if self.counts.get(key, 0) < replications:
            raise _BudgetSpent
        return self.evaluated[key]

    def _store(self, candidate: Candidate) -> None:
        for i, old in enumerate(self.plan.candidates):
            if (old.workers, old.scale) == (candidate.workers, candidate.scale):
                self.plan.candidates[i] = candidate
                return
        self.plan.candidates.append(candidate)

    # -- monotonicity --------------------------------------------------------------------------------

    def _record_raw(self, key: tuple[int, float], samples: list[Sample]) -> None:
        """Each replication's whole-run statistics of the upper-bound targets (no warm-up cut: the
        pathwise argument holds item by item, so for whole runs)."""
        store = self.raw.setdefault(key, {})
        for target in self.plan.targets:
            if target.op != "<=" or target.quantity == "utilisation":
                continue
            values = store.setdefault(target.metric, {})
            for sample in samples:
                values[sample.replication] = _whole_run(sample, target)

    def _check_monotone(self) -> None:
        keys = sorted(self.raw, key=self._order)
        for lighter, heavier in zip(keys[1:], keys[:-1]):  # heavier: fewer workers or more load
            for metric, worse in self.raw[heavier].items():
                better = self.raw[lighter].get(metric, {})
                for rep in sorted(set(worse) & set(better)):
                    high, low = better[rep], worse[rep]
                    if high > low + 1e-9 * max(1.0, abs(low)):
                        self._violation(metric, heavier, lighter, rep, low, high)
                        break
        self._check_verdict_order()

    def _order(self, key: tuple[int, float]) -> float:
        """Sort key from the heaviest configuration to the lightest."""
        workers, scale = key
        return workers if self.plan.question == "workers" else -scale

    def _describe(self, key: tuple[int, float]) -> str:
        workers, scale = key
        return f"{workers} workers" if self.plan.question == "workers" else f"load x{scale:.4g}"

    def _violation(self, metric: str, heavier, lighter, rep: int, low: float, high: float) -> None:
        seen = (metric, hash(heavier), hash(lighter))
        if seen in self.seen_violations:
            return
        self.seen_violations.add(seen)
        self.plan.monotone = False
        self.plan.notes.append(
            f"monotonicity does not hold: replication {rep} has {metric} {high:.4g} with {self._describe(lighter)} "
            f"but {low:.4g} with {self._describe(heavier)} (same random numbers); the search assumes it does"
        )

    def _check_verdict_order(self) -> None:
        ordered = sorted(self.evaluated.values(), key=lambda c: self._order((c.workers, c.scale)))
        for heavier, lighter in zip(ordered, ordered[1:]):
            if heavier.ceiling == "meets" and lighter.ceiling == "fails":
                seen = ("verdicts", hash((heavier.workers, heavier.scale)), hash((lighter.workers, lighter.scale)))
                if seen not in self.seen_violations:
                    self.seen_violations.add(seen)
                    self.plan.monotone = False
                    self.plan.notes.append(
                        f"verdicts out of order: {self._describe((heavier.workers, heavier.scale))} meets the upper "
                        f"bounds but {self._describe((lighter.workers, lighter.scale))} fails one"
                    )


def _whole_run(sample: Sample, target: Target) -> float:
    """A replication's statistic of a target's metric over the whole run (for the monotonicity check)."""
    cols = sample.columns
    if target.quantity == "depth":  # the time-average number waiting over [0, last put]
        t_put, t_get = cols["t_put"], cols["t_get"]
        end = float(np.nanmax(t_put))
        waiting = np.minimum(np.where(np.isnan(t_get), end, t_get), end) - t_put
        return float(np.sum(waiting[waiting > 0])) / end if end > 0 else math.nan
    values = cols["abandoned" if target.quantity == "abandon" else target.quantity]
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return math.nan
    level = target.level
    return float(values.mean()) if level is None else float(np.quantile(values, level, method="inverted_cdf"))


def _unstable(workers: int, scale: float = 1.0) -> Candidate:
    return Candidate(workers, scale, verdict="unstable")


def plan_workers(
    model: Model,
    targets: Sequence[Target],
    simulate: Simulate,
    *,
    confidence: float = 0.95,
    max_workers: int = 1000,
    budget: Budget = DEFAULT_BUDGET,
    items: int | None = None,
    progress: bool = True,
) -> Plan:
    """The fewest workers that meet every target (see the module docstring).

    Args:
        model: the queue.
        targets: the targets (all must hold).
        simulate: runs replications of a worker count (``scale`` is always 1 here).
        confidence: the intervals' level.
        max_workers: the largest count considered.
        budget: how much simulation may be spent.
        items: items per replication (default :func:`items_per_replication`).
        progress: show a progress bar on stderr.
    """
    plan = Plan(model, tuple(targets), confidence, "workers", budget=budget, max_workers=max_workers)
    fewest = model.fewest
    if fewest - 1 >= 1:
        plan.candidates.append(_unstable(min(fewest - 1, max_workers)))
    if fewest > max_workers:
        plan.decided = True
        plan.reason = (f"no count up to {max_workers} workers meets the targets: every count up to {fewest - 1} is "
                       f"unstable (offered load {_num(model.load)} Erlangs: with c <= lam E[S] the backlog grows "
                       "without bound)")  # fmt: skip
        return plan
    guess = theory_guess(model, targets, max_workers)
    plan.guess = guess
    start = fewest if guess is None else guess
    plan.items_per_replication = items or run_length(model, targets, max_workers=max_workers)
    _searching(plan, simulate, progress, lambda search: _search_workers(search, plan, fewest, start, max_workers),
               f"the budget ({budget}) was spent before every verdict was decided")  # fmt: skip
    _conclude_workers(plan, fewest)
    return plan


def _searching(plan: Plan, simulate: Simulate, progress: bool, search: Callable[[_Search], None], spent: str) -> None:
    """Run ``search`` with a :class:`_Search` of the plan, noting ``spent`` if the budget ran out."""
    running = _Search(plan, simulate, progress)
    try:
        search(running)
    except _BudgetSpent:
        plan.budget_spent = True
        plan.notes.append(spent)
    finally:
        running.close()


def _search_workers(search: _Search, plan: Plan, fewest: int, start: int, max_workers: int) -> None:
    first = FIRST_REPLICATIONS
    tried: dict[int, Candidate] = {}

    def run(c: int, replications: int) -> Candidate:
        tried[c] = search.grow((c, 1.0), replications)
        return tried[c]

    for c in ([start - 1] if start - 1 >= fewest else []) + [start]:
        run(c, first)
        if _beyond_service(search, plan):
            return
    step = 1
    while True:
        lo = max([fewest - 1, *(c for c, k in tried.items() if k.ceiling == "fails")])
        meets = [c for c, k in tried.items() if k.ceiling == "meets" and c > lo]
        hi = min(meets) if meets else None
        if hi is not None and hi == lo + 1:
            floor = tried[hi].floor
            if floor == "undecided":
                run(hi, 2 * tried[hi].replications)
                continue
            return
        if hi is None and lo >= max_workers:
            return
        gap = range(lo + 1, (hi if hi is not None else max_workers + 1))
        untried = [c for c in gap if c not in tried]
        if hi is None and untried:
            top = max([c for c in tried if c > lo], default=lo)
            above = [c for c in untried if c > top]
            if above:
                nxt = min(max_workers, top + step)
                nxt = nxt if nxt in above else above[0]
                step *= 2
                run(nxt, first)
                continue
        if hi is not None and untried:
            middle = (lo + hi) // 2
            run(min(untried, key=lambda c: (abs(c - middle), c)), first)
            continue
        pending = [c for c in gap if c in tried and tried[c].ceiling == "undecided"]
        if not pending:
            return
        for c in pending:
            run(c, 2 * tried[c].replications)


def _beyond_service(search: _Search, plan: Plan) -> bool:
    """Whether a sojourn target is out of reach (:func:`_service_limit`, found on the first candidate run)."""
    return bool(search.beyond)


def _service_limit(search: _Search, samples: list[Sample]) -> bool:
    """Whether a sojourn target is out of reach of any worker count (or load): an item's sojourn is
    at least its service time, so when the service time's own statistic fails the target (decided),
    nothing meets it. Read from a candidate's replications (their service times are every
    candidate's: common random numbers); the reason goes into the plan."""
    plan = search.plan
    sojourn = [t for t in plan.targets if t.quantity == "sojourn"]
    if not sojourn or not samples or "service" not in samples[0].columns:
        return False
    found, _ = estimates(samples, [t.metric.replace("sojourn", "service") for t in sojourn], plan.confidence)
    for target in sojourn:
        limit = found[target.metric.replace("sojourn", "service")].estimate
        if limit.low > target.value:
            plan.notes.append(
                f"{target.metric} is at least the service time's {target.metric.split('_', 1)[1]}, "
                f"{_interval(limit)} s > {_num(target.value)} s: no number of workers meets {target}"
            )
            plan.reason = f"nothing meets {target}: the service time alone exceeds it"
            return True
    return False


def _conclude_workers(plan: Plan, fewest: int) -> None:
    simulated = {c.workers: c for c in plan.candidates if c.verdict != "unstable"}
    if plan.reason:  # decided before the search (out of reach)
        plan.decided = True
        return
    meets = sorted(c for c, k in simulated.items() if k.verdict == "meets")
    plan.conservative = meets[0] if meets else None
    lo = max([fewest - 1, *(c for c, k in simulated.items() if k.ceiling == "fails")])
    upper = [c for c, k in simulated.items() if k.ceiling == "meets" and c > lo]
    hi = min(upper) if upper else None
    if hi is not None and hi == lo + 1 and simulated[hi].floor != "undecided":
        plan.decided = True
        if simulated[hi].floor == "fails":
            low_targets = ", ".join(str(v.target) for v in simulated[hi].targets if v.target.op == ">=")
            plan.reason = (f"no worker count meets every target: {hi} is the fewest that meets the upper bounds, "
                           f"and it fails {low_targets} (more workers only lower utilisation)")  # fmt: skip
            plan.answer = None
        else:
            plan.answer = hi
        return
    if hi is None and lo >= plan.max_workers:
        plan.decided = True
        plan.reason = f"no count up to {plan.max_workers} workers meets the targets"
        return
    plan.decided = False
    plan.answer = plan.conservative
    below = [c for c, k in simulated.items() if k.verdict == "undecided" and c > lo
             and (plan.conservative is None or c < plan.conservative)]  # fmt: skip
    plan.undecided = min(below) if below else None
    if plan.answer is None:
        plan.reason = "undecided within the budget: no count was shown to meet the targets"


# -- elastic workers beside the answer -------------------------------------------------------------------

#: simulate_elastic(replications) -> one Sample per replication id, for one elastic candidate.
SimulateElastic = Callable[[range], list[Sample]]


def judge_elastic(plan: Plan, candidates: Sequence[tuple[str, int, SimulateElastic]], *, progress: bool = True,
                  most: int = 4 * FIRST_REPLICATIONS) -> None:  # fmt: skip
    """Judge elastic workers beside a plan's answer: each candidate ``(spec, max workers, simulate)``
    gets :data:`FIRST_REPLICATIONS` replications (the same random numbers as every count), twice as
    many while a target is undecided (up to ``most``, within the budget), its verdict and its cost;
    they go into ``plan.elastic``.

    Args:
        plan: a plan of the workers question (its targets, confidence and budget).
        candidates: per elastic spec, its most workers and a callback running its replications.
        progress: show a progress bar.
        most: the most replications a candidate gets.
    """
    from tqdm import tqdm

    bar = tqdm(total=len(candidates), desc="elastic", unit="candidate", disable=not progress, leave=False)
    for spec, high, simulate in candidates:
        samples: list[Sample] = []
        wanted = FIRST_REPLICATIONS
        candidate = Candidate(high, spec=spec)
        while len(samples) < wanted:
            budget = plan.budget
            if budget.items is not None and samples and plan.spent_items + samples[-1].items > budget.items:
                plan.notes.append(f"the budget ran out while judging {spec}")
                break
            new = simulate(range(len(samples), wanted))
            plan.spent_items += sum(s.items for s in new)
            samples.extend(new)
            candidate = evaluate(samples, plan.targets, plan.confidence, high)
            candidate.spec = spec
            if not candidate.undecided() or wanted >= most:
                break
            wanted = min(2 * wanted, most)
        plan.elastic.append(candidate)
        bar.update()
    bar.close()


def _cost(c: Candidate) -> str:
    return "-" if c.cost is None else _interval(c.cost)


def elastic_lines(plan: Plan) -> list[str]:
    """One line per elastic candidate: its verdict and figures, and its cost beside the answer's."""
    if not plan.elastic:
        return []
    fixed = next((c for c in plan.candidates if c.workers == plan.answer and c.verdict != "unstable"), None)
    lines = []
    for c in plan.elastic:
        figures = "; ".join(_figure(v) for v in c.targets if v.steady)
        versus = ""
        if c.cost is not None and fixed is not None and fixed.cost is not None and fixed.cost.mean:
            versus = (f" against {_num(fixed.cost.mean)} for {fixed.workers} fixed workers "
                      f"(x{c.cost.mean / fixed.cost.mean:.2g})")  # fmt: skip
        lines.append(f"elastic {c.spec}: {_verdict_text(plan, c)} ({figures}); cost {_cost(c)} worker-s{versus}")
    return lines


# -- max load -------------------------------------------------------------------------------------------


def plan_max_load(
    model: Model,
    targets: Sequence[Target],
    workers: int,
    simulate: Simulate,
    *,
    confidence: float = 0.95,
    budget: Budget = DEFAULT_BUDGET,
    items: int | None = None,
    progress: bool = True,
) -> Plan:
    """The largest arrival-rate factor at which ``workers`` meet every target (module docstring).

    Args:
        model: the queue at factor 1.
        targets: the targets.
        workers: the worker count.
        simulate: runs replications at a load factor.
        confidence: the intervals' level.
        budget: how much simulation may be spent.
        items: items per replication (default :func:`items_per_replication` near the guess).
        progress: show a progress bar.
    """
    plan = Plan(model, tuple(targets), confidence, "max-load", budget=budget, max_workers=workers)
    plan.answer = workers
    ceiling = workers / model.load
    plan.guess = load_guess(model, targets, workers)
    start = _load_start(model, targets, workers)
    plan.items_per_replication = items or run_length(model, targets, workers=workers)
    plan.candidates.append(_unstable(workers, ceiling))
    _searching(plan, simulate, progress, lambda search: _search_load(search, plan, workers, start, ceiling),
               f"the budget ({budget}) was spent before the bisection ended")  # fmt: skip
    _conclude_load(plan, ceiling)
    return plan


def _search_load(search: _Search, plan: Plan, workers: int, start: float, ceiling: float) -> None:
    tried: dict[float, Candidate] = {}

    def run(scale: float) -> Candidate:
        replications = FIRST_REPLICATIONS
        while True:
            candidate = tried[scale] = search.grow((workers, scale), replications)
            if candidate.ceiling != "undecided" or replications >= MAX_LOAD_REPLICATIONS:
                return candidate
            replications *= 2

    # gallop from theory's guess: down by 10%, 20%, 40%, ... until a factor meets, then up likewise
    # until one is not shown to meet (the stability limit fails by theory)
    step, scale = 0.1, start
    while run(scale).ceiling != "meets":
        if _beyond_service(search, plan):
            return
        if scale < ceiling * 1e-3:
            return  # not even a thousandth of the stable load meets the targets
        scale, step = scale * max(1.0 - step, 0.5), step * 2
    if _beyond_service(search, plan):
        return
    step = 0.1
    while max(tried) == scale and scale * (1 + step) < ceiling:
        scale, step = scale * (1 + step), step * 2
        if run(scale).ceiling != "meets":
            break
    while True:  # bisect (geometrically) between the largest factor that meets and the next that does not
        lo = max(s for s, k in tried.items() if k.ceiling == "meets")
        hi = min([ceiling, *(s for s, k in tried.items() if k.ceiling != "meets" and s > lo)])
        if hi / lo - 1 <= TOLERANCE:
            break
        run(math.sqrt(lo * hi))
    fails = [s for s, k in tried.items() if k.ceiling == "fails" and s > lo]
    probe = hi * (1 + 2 * TOLERANCE)
    if not any(s <= probe for s in fails) and probe < ceiling:
        run(probe)  # one factor past the undecided ones, to bound the limit from above


def _conclude_load(plan: Plan, ceiling: float) -> None:
    tried = [c for c in plan.candidates if c.verdict != "unstable"]
    meets = [c.scale for c in tried if c.ceiling == "meets"]
    if plan.reason:
        plan.decided = True
        return
    if not meets:
        plan.decided = all(c.ceiling == "fails" for c in tried)
        plan.reason = (f"no load meets the targets with {plan.answer} workers" if plan.decided else
                       "undecided within the budget: no load was shown to meet the targets")  # fmt: skip
        return
    lo = max(meets)
    fails = [ceiling, *(c.scale for c in tried if c.ceiling == "fails" and c.scale > lo)]
    hi_fail = min(fails)
    pending = [c.scale for c in tried if c.ceiling == "undecided" and c.scale > lo]
    at_lo = next(c for c in tried if c.scale == lo)
    if at_lo.floor == "fails":
        plan.decided = True
        plan.reason = (f"no load meets every target: the upper bounds hold up to x{lo:.4g}, where a lower bound "
                       "already fails (a lower load lowers utilisation further)")  # fmt: skip
        return
    plan.load = lo
    plan.load_interval = (lo, hi_fail)
    next_up = min([hi_fail, *pending])
    plan.decided = next_up / lo - 1 <= TOLERANCE and not plan.budget_spent and at_lo.floor == "meets"
    plan.conservative = None
    if pending:
        plan.notes.append("left undecided (treated as not shown to meet): load " +
                          ", ".join(f"x{s:.4g}" for s in sorted(pending)))  # fmt: skip


# -- output ---------------------------------------------------------------------------------------------


def _num(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}g}"


def _interval(est: Estimate) -> str:
    if math.isnan(est.low):
        return f"{_num(est.mean)} [n/a]"
    return f"{_num(est.mean)} [{_num(est.low)}, {_num(est.high)}]"


def _unit(target: Target) -> str:
    return f" ({target.unit})" if target.unit else ""


def _describe_unstable(plan: Plan, c: Candidate) -> str:
    word = "throttled" if plan.model.maxsize else "unstable"  # a bounded queue holds the pusher back instead
    if plan.question == "max-load":
        return f"{word}: x{c.scale:.4g} is a load of {_num(plan.model.load * c.scale)} Erlangs >= {c.workers} workers"
    return f"{word}: offered load {_num(plan.model.load)} Erlangs >= {c.workers} workers"


def _verdict_text(plan: Plan, c: Candidate) -> str:
    if c.verdict == "unstable":
        return _describe_unstable(plan, c)
    if c.verdict == "fails":
        return "fails " + ", ".join(c.failing())
    if c.verdict == "undecided":
        return "undecided " + ", ".join(c.undecided())
    return "meets"


def _ordered(plan: Plan) -> list[Candidate]:
    if plan.question == "max-load":
        return sorted(plan.candidates, key=lambda c: c.scale)
    return sorted(plan.candidates, key=lambda c: c.workers)


def plan_rows(plan: Plan) -> Rows:
    """The candidates tried, one row each: count (or load), replications, each target's estimate with
    its interval, and the verdict."""
    rows = []
    costly = bool(plan.elastic) or not plan.model.stationary
    for c in [*_ordered(plan), *plan.elastic]:
        row = {"workers": c.label}
        if plan.question == "max-load":
            row["load"] = f"x{c.scale:.4g}"
        row["reps"] = str(c.replications) if c.verdict != "unstable" else "-"
        by_metric = {v.target.metric: v for v in c.targets}
        for target in plan.targets:
            shown = by_metric.get(target.metric)
            header = f"{target.metric}{_unit(target)}"
            row[header] = _interval(shown.steady.estimate) if shown and shown.steady else "-"
        if costly:
            row["worker-s"] = _cost(c)
        row["verdict"] = _verdict_text(plan, c)
        rows.append(row)
    return rows


def answer_line(plan: Plan) -> str:
    """The answer in one line (see ``qbench plan --help``)."""
    level = f"{plan.confidence:.0%}"
    if plan.question == "max-load":
        return _load_line(plan, level)
    if plan.answer is None:
        return f"answer: none: {plan.reason}"
    at = next(c for c in plan.candidates if c.workers == plan.answer and c.verdict != "unstable")
    below = next((c for c in plan.candidates if c.workers == plan.answer - 1), None)
    binding = set(below.failing()) if below is not None and below.verdict == "fails" else set()
    shown = [v for v in at.targets if v.target.metric in binding] or [v for v in at.targets if v.target.op == "<="]
    figures = "; ".join(_figure(v) for v in shown if v.steady)
    if plan.decided:
        if below is None or plan.answer - 1 < 1:
            why = "fewer is none"
        elif below.verdict == "unstable":
            why = f"{below.workers} workers are {'throttled' if plan.model.maxsize else 'unstable'}"
        else:
            why = f"{below.workers} workers fail"
        return f"answer: {plan.answer} workers ({figures}; {why}) at {level} confidence"
    undecided = f"; {plan.undecided} workers undecided" if plan.undecided is not None else ""
    return (f"answer: {plan.answer} workers, undecided: the budget ({plan.budget}) ran out; {plan.answer} is the "
            f"fewest count shown to meet ({figures}) at {level} confidence{undecided}; raise --budget to decide")  # fmt: skip


def _figure(v: Verdict) -> str:
    """``wait_p99 8.67 s [7.17, 10.2] <= 15 s``."""
    assert v.steady is not None
    est, unit = v.steady.estimate, " s" if v.target.unit == "s" else ""
    bounds = "[n/a]" if math.isnan(est.low) else f"[{_num(est.low)}, {_num(est.high)}]"
    return f"{v.target.metric} {_num(est.mean)}{unit} {bounds} {v.target.op} {_num(v.target.value)}{unit}"


def _load_line(plan: Plan, level: str) -> str:
    if plan.load is None:
        return f"answer: none: {plan.reason}"
    lo, hi = plan.load_interval or (plan.load, plan.load)
    stable = [c.scale for c in plan.candidates if c.verdict == "unstable"]
    upper = f"x{hi:.3g}" + (": unstable" if stable and hi == min(stable) else "")
    pending = sorted(c.scale for c in plan.candidates if c.ceiling == "undecided" and lo < c.scale < hi)
    between = f"; undecided: {', '.join(f'x{s:.3g}' for s in pending)}" if pending else ""
    state = "" if plan.decided else "; undecided: raise --budget to narrow it"
    return (f"answer: {plan.answer} workers meet the targets up to x{lo:.3g} the arrival rate "
            f"({_num(plan.model.lam * lo)} items/s) at {level} confidence; the limit lies in [x{lo:.3g}, {upper}]"
            f"{between}{state}")  # fmt: skip


def plan_table(plan: Plan) -> str:
    """The plan as text: the candidates table, the answer line, then notes (one per line)."""
    lines = [to_text(plan_rows(plan)), answer_line(plan), *elastic_lines(plan)]
    lines += [f"note: {note}" for note in plan.notes]
    if not plan.model.stationary:
        span = f" ({_num(plan.model.horizon)} s of arrivals, then drained)" if plan.model.horizon else ""
        lines.append(f"note: the arrival rate changes over time: each target is over every item of the run{span}, the "
                     "peak included, not a steady state (there is none); sized for the whole run, not the mean "
                     "rate")  # fmt: skip
    if plan.model.maxsize:
        lines.append(f"note: with maxsize {plan.model.maxsize} the pusher blocks in put while the queue is full; the "
                     "time it spends blocked is not part of any wait or sojourn here (keep the evidence with --out "
                     "and read the report's throttled verdicts)")  # fmt: skip
    if plan.monotone and sum(c.verdict != "unstable" for c in plan.candidates) > 1:
        lines.append("check: every pair of candidates ordered as theory says, replication by replication "
                     "(common random numbers)")  # fmt: skip
    return "\n".join(lines)


def _estimate_json(est: Estimate) -> dict[str, Any]:
    clean = lambda v: None if math.isnan(v) else v  # noqa: E731
    return {"estimate": clean(est.mean), "low": clean(est.low), "high": clean(est.high)}


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as one JSON-ready object: ``workers`` (the answer, null when none), ``decided`` and
    ``candidates`` (per count: replications, each target's estimate, interval and verdict), with the
    question, targets, confidence, budget, run length, theory's guess, notes and, for max-load, the
    load factor and its interval."""

    def entry_of(c: Candidate) -> dict[str, Any]:
        entry: dict[str, Any] = {"workers": c.workers, "verdict": c.verdict, "replications": c.replications,
                                 "items": c.items, "warmup_cut": c.cut, "settled": c.settled,
                                 "source": "theory" if c.verdict == "unstable" else "simulation"}  # fmt: skip
        if c.spec is not None:
            entry["spec"] = c.spec
        if c.cost is not None:
            entry["worker_seconds"] = _estimate_json(c.cost)
        if plan.question == "max-load":
            entry["load"] = c.scale
        entry["targets"] = {v.target.metric: {**(_estimate_json(v.steady.estimate) if v.steady else {}),
                                              "threshold": v.target.value, "op": v.target.op, "verdict": v.verdict,
                                              **({"note": v.note} if v.note else {})} for v in c.targets}  # fmt: skip
        return entry

    candidates = [entry_of(c) for c in _ordered(plan)]
    out: dict[str, Any] = {
        "question": plan.question, "arrival": plan.model.arrival, "service": plan.model.service,
        "maxsize": plan.model.maxsize, "targets": [str(t) for t in plan.targets], "confidence": plan.confidence,
        "workers": plan.answer, "decided": plan.decided, "conservative": plan.conservative,
        "undecided": plan.undecided, "answer": answer_line(plan), "reason": plan.reason or None,
        "candidates": candidates, "monotone": plan.monotone, "notes": plan.notes,
        "theory_guess": plan.guess, "items_per_replication": plan.items_per_replication,
        "budget": {"items": plan.budget.items, "seconds": plan.budget.seconds},
        "spent": {"items": plan.spent_items, "seconds": round(plan.spent_seconds, 3)},
        "stationary": plan.model.stationary, "elastic": [entry_of(c) for c in plan.elastic],
        "elastic_lines": elastic_lines(plan),
    }  # fmt: skip
    if plan.question == "workers":
        out["max_workers"] = plan.max_workers
    else:
        out["load"] = plan.load
        out["load_interval"] = list(plan.load_interval) if plan.load_interval else None
        out["arrival_rate"] = plan.model.lam
    return out


def target_series(plan: Plan) -> list[dict[str, Any]]:
    """Per target, its estimates against the worker count (or load factor) tried, for a chart:
    ``{"target": Target, "x": [...], "estimate": [...], "low": [...], "high": [...]}``."""
    series = []
    for target in plan.targets:
        points = [(c.scale if plan.question == "max-load" else c.workers, v.steady.estimate)
                  for c in _ordered(plan) for v in c.targets if v.target == target and v.steady]  # fmt: skip
        series.append({"target": target, "x": [x for x, _ in points], "estimate": [e.mean for _, e in points],
                       "low": [e.low for _, e in points], "high": [e.high for _, e in points]})  # fmt: skip
    return series


# -- the answer of a run (the report's first section) ---------------------------------------------------


@dataclass
class RunAnswer:
    """How many workers, for one (arrival, service, maxsize) of a run, from the worker counts it ran.

    Attributes:
        arrival, service, maxsize: the group.
        load: its offered load, Erlangs (no count up to it has a steady state).
        stable: the fewest workers whose backlog verdict is *stable* (None if none is).
        stable_note: what the counts below it got, e.g. ``2: overloaded``.
        meeting: the fewest workers that meet every target (None if none does or no targets).
        meeting_note: what the counts below it got, or why there is no answer.
        candidates: the targets' verdicts per worker count (empty without targets).
        elastic: the run's elastic cells of the group, with their targets' verdicts and cost.
    """

    arrival: str
    service: str
    maxsize: int
    stable: int | None
    stable_note: str
    load: float = 0.0
    meeting: int | None = None
    meeting_note: str = ""
    candidates: list[Candidate] = field(default_factory=list)
    elastic: list[Candidate] = field(default_factory=list)


def run_targets(run: Any) -> tuple[tuple[Target, ...], float]:
    """A run's targets (the grid's ``slo`` in its manifest) and their confidence (the plan's, or 95%).

    Raises:
        bench.results_format.TargetError: a target in the manifest that does not parse.
    """
    from bench.results_format import PLAN_KEY, parse_targets

    grid = run.manifest.get("grid") if isinstance(run.manifest.get("grid"), dict) else {}
    texts = grid.get("slo") or []
    plan = run.manifest.get(PLAN_KEY)
    first = plan[0] if isinstance(plan, list) and plan else plan
    confidence = first.get("confidence", 0.95) if isinstance(first, dict) else 0.95
    return parse_targets(list(texts)), float(confidence)


def run_answers(
    run: Any, stats: Sequence[Any], targets: Sequence[Target] | None = None, confidence: float | None = None
) -> list[RunAnswer]:
    """Per (arrival, service, maxsize) of a run: the fewest workers with a stable backlog and, when
    the run has targets, the fewest that meet them (:func:`evaluate` on each cell's items, the
    estimator of :mod:`analysis.quantiles`). Counts the run did not hold are not guessed at: a
    count below the answer that was not run is named (the answer may then be lower).

    Args:
        run: an opened run (:class:`analysis.load.Run`).
        stats: its cells' statistics (:func:`analysis.cell_stats.summarize`).
        targets: the targets to judge (default: the run's own, :func:`run_targets`).
        confidence: their intervals' level (default: the run's, or 95%).
    """
    from analysis.quantiles import run_samples

    own, level = run_targets(run)
    targets = own if targets is None else tuple(targets)
    confidence = level if confidence is None else confidence
    groups: dict[tuple[str, str, int], list[Any]] = {}
    moving: dict[tuple[str, str, int], list[Any]] = {}  # elastic cells: judged beside the counts
    for s in stats:
        if s.replications:
            key = (str(s.params["arrival"]), str(s.params["service"]), int(s.params.get("maxsize") or 0))
            spec = s.params.get("elastic")
            elastic = isinstance(spec, str) and bool(spec)
            (moving if elastic else groups).setdefault(key, []).append(s)
    answers = []
    for arrival, service, maxsize in dict.fromkeys([*groups, *moving]):
        cells = sorted(groups.get((arrival, service, maxsize), []), key=lambda s: int(s.params["workers"]))
        verdicts = {int(s.params["workers"]): s.growth.verdict for s in cells}
        load = float((cells or moving[(arrival, service, maxsize)])[0].params["offered_load"])
        stable = next((c for c, v in verdicts.items() if v == "stable"), None)
        below = [f"{c}: {v}" for c, v in verdicts.items() if stable is None or c < stable]
        if stable is not None and stable - 1 >= 1 and stable - 1 not in verdicts:
            unstable = stable - 1 < stable_workers(1.0, load)
            below.append(f"{stable - 1}: not run" + (f" (unstable by theory: offered load {_num(load)} Erlangs)"
                                                     if unstable else ""))  # fmt: skip
        answer = RunAnswer(arrival, service, maxsize, stable, ", ".join(below), load)
        metrics = [t.metric for t in targets] or ["wait_mean"]
        if targets and cells:
            for s in cells:
                samples = run_samples(run, s.cell, metrics)
                answer.candidates.append(evaluate(samples, targets, confidence, int(s.params["workers"])))
            _meeting(answer, load)
        for s in moving.get((arrival, service, maxsize), []):
            found = evaluate(run_samples(run, s.cell, metrics), targets, confidence, int(s.params["workers"]))
            found.spec = str(s.params["elastic"])
            answer.elastic.append(found)
        answers.append(answer)
    return answers


def _meeting(answer: RunAnswer, load: float) -> None:
    """The fewest count that meets every target among those run, and what the counts below it got."""
    by_count = {c.workers: c for c in answer.candidates}
    meets = [c for c, k in by_count.items() if k.verdict == "meets"]
    if not meets:
        said = ", ".join(f"{c}: {k.verdict}" + (f" {', '.join(k.failing() or k.undecided())}" if k.verdict != "meets"
                                                 else "") for c, k in sorted(by_count.items()))  # fmt: skip
        answer.meeting_note = f"none of the counts run meets every target ({said})"
        return
    fewest = min(meets)
    answer.meeting = fewest
    below = by_count.get(fewest - 1)
    if fewest - 1 < 1:
        answer.meeting_note = "fewer is none"
    elif fewest - 1 < stable_workers(1.0, load):
        answer.meeting_note = f"{fewest - 1}: unstable (offered load {_num(load)} Erlangs)"
    elif below is None:
        answer.meeting_note = f"{fewest - 1} workers not run: the answer may be lower"
    elif below.verdict == "fails":
        answer.meeting_note = f"{fewest - 1}: fails {', '.join(below.failing())}"
    else:
        answer.meeting_note = f"{fewest - 1}: undecided {', '.join(below.undecided())} (more replications decide)"
