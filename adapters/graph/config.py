"""What the Graph backend needs to know, as plain values (the composition root fills it from settings)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class GraphConfig:
    tenant_id: str
    client_id: str
    client_secret: str | None = None
    certificate_path: Path | None = None
    certificate_password: str | None = None
    authority: str = "https://login.microsoftonline.com"
    base_url: str = "https://graph.microsoft.com/v1.0"
    #: A CA bundle to trust besides the system's (a private authority, or the sandbox's CA).
    ca_file: Path | None = None
    #: The zone all-day events are written in (the connector's zone).
    all_day_zone: str = "UTC"
    #: Requests in one $batch (Graph allows 20).
    batch_size: int = 20
    #: Requests in flight per mailbox (Graph allows 4), and per process for all mailboxes.
    requests_per_mailbox: int = 4
    max_requests: int = 16
    #: A Retry-After up to this long is waited out in place; a longer one ends the mailbox's sync with
    #: ``ThrottledError`` so the job is retried later instead of a thread sleeping for minutes.
    max_retry_wait_s: float = 10.0
    #: How many times one batch's throttled or failed-dependency parts are sent again.
    max_rounds: int = 8
    timeout_s: float = 60.0

    @property
    def scope(self) -> str:
        """The app-only scope for the Graph host in ``base_url`` (national clouds have their own)."""
        host = self.base_url.split("://", 1)[-1].split("/", 1)[0]
        if host.startswith(("127.", "localhost")):
            return "https://graph.microsoft.com/.default"
        return f"https://{host}/.default"

    @property
    def host(self) -> str:
        return self.base_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
