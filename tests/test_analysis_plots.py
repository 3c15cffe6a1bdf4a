"""Charts of large runs: what is drawn when a run has too many cells to draw them all."""

from __future__ import annotations


def test_a_large_run_s_charts_keep_few_panels_and_lines_and_the_fewest_stable_count():
    """10,000 cells cannot be 10,000 lines: panels and worker counts are thinned evenly, the first and
    the last kept, and a panel keeps the fewest workers found stable (where the answer is)."""
    from types import SimpleNamespace

    from analysis import plots

    assert plots._evenly(100, 12)[0] == 0 and plots._evenly(100, 12)[-1] == 99 and len(plots._evenly(100, 12)) == 12
    assert plots._evenly(5, 12) == [0, 1, 2, 3, 4]
    group = [SimpleNamespace(growth=SimpleNamespace(verdict="overloaded" if w < 38 else "stable"), params={"workers": w})
             for w in range(1, 101)]  # fmt: skip
    shown = plots._shown_cells(group)
    assert len(shown) <= plots.MAX_LINES
    assert [s.params["workers"] for s in shown][0] == 1 and 38 in [s.params["workers"] for s in shown]
    assert plots._shown_cells(group[:5]) == group[:5]
