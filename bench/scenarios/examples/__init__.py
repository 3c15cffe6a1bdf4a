"""Example scenarios: complete programs a user could write, run with --scenario FILE.py:NAME."""
