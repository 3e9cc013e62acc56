"""The in-memory calendar backend: the embedded default (optionally kept in a JSON file) and the
calendar the sync tests run against."""

from adapters.memory.backend import MemoryBackend
from adapters.memory.calendar import FailureRule, MemoryCalendar, StoredEvent

__all__ = ["FailureRule", "MemoryBackend", "MemoryCalendar", "StoredEvent"]
