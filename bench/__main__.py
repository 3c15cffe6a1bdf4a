"""``python -m bench``: the qbench command line."""

from bench.cli import main

raise SystemExit(main())
