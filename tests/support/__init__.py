"""The code behind the fixtures of ``tests/conftest.py``; only conftest.py imports it.

``synthetic``: synthetic results folders (a FIFO G/G/c simulation written as schema version 2).
``engines``: a sink that keeps every batch, and one asyncio replication through the engine.
``crashing_task``: a cell task whose worker process dies; spawned worker processes import it by
its name, ``support.crashing_task`` (they get the parent's ``sys.path``, which pytest gave
``tests/``).
"""
