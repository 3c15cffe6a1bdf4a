# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Backlog growth, walked through
#
# This notebook opens a results folder (set `QBENCH_RUN`, default `results/default`), answers "how many
# workers?" for a latency target, shows the per-cell table with 95% intervals and verdicts, draws
# the backlog chart, checks the seed cells against the fluid slope and compares 3 workers with 4 on
# the same arrivals (common random numbers).

# %%
import os
import tempfile
from pathlib import Path

from IPython.display import Image, display

from analysis.cell_stats import summarize
from analysis.compare import compare_runs, format_comparison
from analysis.load import open_run
from analysis.plan import run_answers
from analysis.plots import plot_backlog, plot_targets
from analysis.report import target_panels
from analysis.summary_table import summary_rows
from analysis.tables import to_text
from bench.results_format import parse_targets

RUN = Path(os.environ.get("QBENCH_RUN", "results/default"))
run = open_run(RUN)
stats = summarize(run)
charts = Path(os.environ.get("QBENCH_CHARTS", tempfile.mkdtemp(prefix="qbench-nb-")))

# %% [markdown]
# ## How many workers?
# The fewest worker count in the run whose backlog is stable, and the fewest whose steady-state p99
# wait meets 5 s: its 95% interval (pooled items after the warm-up, sectioning across replications)
# lies at or below 5 s. `qbench plan` answers the same question without a grid, adding worker counts
# and replications until it is decided.

# %%
targets = parse_targets(["wait_p99<=5"])
answers = run_answers(run, stats, targets, 0.95)
for a in answers:
    meeting = "none of those run" if a.meeting is None else f"{a.meeting} ({a.meeting_note})"
    print(f"{a.arrival} / {a.service}: stable from {a.stable}; wait_p99<=5 from {meeting}")
png, _svg = plot_targets(target_panels(answers, 0.95), charts)
display(Image(filename=str(png)))

# %% [markdown]
# ## Every cell
# Per cell, with 95% intervals and the backlog verdict.

# %%
print(to_text(summary_rows(stats)))

# %% [markdown]
# ## The headline chart
# Queue depth over model time: mean of replications with a 95% band, one colour per worker count,
# the fluid slope `lam - c/E[S]` dashed where the offered load exceeds the workers.

# %%
png, _svg = plot_backlog(run, stats, charts)
display(Image(filename=str(png)))

# %% [markdown]
# ## Growth rate against theory
# For each overloaded cell: the measured slope with its interval, and the fluid-limit slope.

# %%
for s in stats:
    if s.growth.verdict == "overloaded":
        fluid = s.fluid_slope
        inside = "inside" if s.growth.slope.contains(fluid) else "outside"
        target = s.growth.time_to_target
        assert target is not None  # every overloaded verdict has one
        print(
            f"{s.label}: {s.growth.slope.format()} items/s, fluid {fluid:.3g} ({inside} the CI), "
            f"1000 deep after ~{target.mean:,.0f} s"
        )

# %% [markdown]
# ## 3 workers against 4
# Paired across replications when both saw the same random numbers.

# %%
workers = sorted({int(w) for w in run.params["workers"]})
if {3, 4} <= set(workers):
    result = compare_runs(f"{RUN}:workers=3", f"{RUN}:workers=4", metrics=["wait_mean", "wait_p99"])
else:
    result = compare_runs(f"{RUN}:workers={workers[0]}", f"{RUN}:workers={workers[-1]}", metrics=["wait_p99"])
print(format_comparison(result, "table"))
