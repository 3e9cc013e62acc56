"""Measured figures (not asserted); ``source_memory`` also lends its measurement to a test."""
