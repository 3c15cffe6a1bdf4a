"""Studies built on the engines' entry points, apart from the harness itself.

* :mod:`.perf`: the pyperf suite, the engines against SimPy and Ciw (``qbench perf``);
* :mod:`.rss`: the memory study, peak RSS of one cell at two sizes (``qbench perf --rss``);
* :mod:`.fidelity`: how far scaled time drifts from virtual time (``qbench fidelity``);
* :mod:`.demo`: the blog program, Fred and George falling behind (``qbench demo``).
"""
