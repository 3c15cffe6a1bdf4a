"""Analysis of qbench results folders: loading, statistics with CIs, theory, charts, report, compare.

Reads runs only through the output contract (``results/README.md``); never imports ``bench``.
"""

from analysis.cell_stats import cell_stats, steady_state, summarize
from analysis.compare import compare_runs, format_comparison, plot_comparison
from analysis.load import ResultsError, open_run, read_depth, read_items
from analysis.report import write_report
from analysis.summary_table import summary_table

__all__ = [
    "ResultsError", "cell_stats", "compare_runs", "format_comparison", "open_run", "plot_comparison",
    "read_depth", "read_items", "steady_state", "summarize", "summary_table", "write_report",
]  # fmt: skip
