"""The sandbox's request log: one entry per HTTP request (a Graph ``$batch`` is one request; its parts
are listed in ``parts``), kept in memory and optionally appended to a JSON-lines file."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class LogEntry:
    face: str  # "ews" | "graph" | "auth" | "admin"
    operation: str  # e.g. "CreateItem", "POST events", "batch", "token"
    mailbox: str | None
    status: int  # HTTP status (EWS errors inside a 200 carry their code in error_code)
    started: datetime
    duration_ms: float
    principal: str = ""
    write: bool = False
    error_code: str | None = None
    fault: str | None = None
    #: For a $batch: one dict per inner request (method, operation, mailbox, status, write).
    parts: tuple[dict[str, Any], ...] = ()
    detail: str = ""

    @property
    def finished(self) -> datetime:
        from datetime import timedelta

        return self.started + timedelta(milliseconds=self.duration_ms)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["started"] = self.started.isoformat()
        data["parts"] = list(self.parts)
        return data


@dataclass
class RequestLog:
    path: Path | None = None
    _entries: list[LogEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def append(self, entry: LogEntry) -> None:
        with self._lock:
            self._entries.append(entry)
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(entry.to_json(), ensure_ascii=False) + "\n")

    def entries(self, where: Callable[[LogEntry], bool] | None = None) -> list[LogEntry]:
        with self._lock:
            return [e for e in self._entries if where is None or where(e)]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def writes(self, mailbox: str | None = None) -> list[LogEntry]:
        """Requests that wrote (a $batch counts once), optionally for one mailbox."""
        return self.entries(lambda e: e.write and (mailbox is None or e.mailbox == mailbox))


def now() -> datetime:
    return datetime.now(UTC)
