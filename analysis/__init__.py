"""Analysis of qbench results folders: loading, statistics with CIs, theory, charts, report, compare.

Reads runs only through the output contract (``results/README.md``, ``bench/results_format.py``);
never imports an engine. ``qbench plan``'s statistics and search are here too (:mod:`analysis.plan`),
driven by a simulation callback the command line supplies.
"""

from analysis.cell_stats import cell_stats, steady_state, summarize
from analysis.compare import compare_runs, format_comparison, plot_comparison
from analysis.load import ResultsError, open_run, read_depth, read_events, read_items
from analysis.plan import plan_max_load, plan_workers, run_answers
from analysis.quantiles import estimates
from analysis.report import write_report
from analysis.summary_table import summary_table
from analysis.windows import cell_windows

__all__ = [
    "ResultsError", "cell_stats", "cell_windows", "compare_runs", "estimates", "format_comparison", "open_run",
    "plan_max_load", "plan_workers", "plot_comparison", "read_depth", "read_events", "read_items", "run_answers",
    "steady_state", "summarize", "summary_table", "write_report",
]  # fmt: skip
