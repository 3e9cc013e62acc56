"""The backend contract suite: one set of tests every ``CalendarBackend`` must pass (see harness.py)."""
