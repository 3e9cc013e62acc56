"""What the EWS backend needs to know, as plain values (the composition root fills it from settings)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Method = Literal["personal", "dedicated", "delegate", "impersonation"]
Auth = Literal["ntlm", "basic", "oauth2"]

#: The admin's "Exchange version" → the server build exchangelib is told, so it never probes for the
#: version (a guess costs requests and can land on the wrong API version behind a load balancer).
VERSION_BUILDS: dict[str, tuple[int, ...]] = {
    "2007": (8, 0),
    "2010": (14, 0),
    "2010_sp1": (14, 1),
    "2010_sp2": (14, 2),
    "2013": (15, 0),
    "2013_sp1": (15, 0, 847),
    "2016": (15, 1),
    "2019": (15, 2),
    # Exchange Server Subscription Edition answers with 15.2 builds and speaks the 2019 schema.
    "se": (15, 2),
    "online": (15, 20),
}

#: Exchange's default throttling allows ~27 concurrent connections per account: stay well below.
MAX_CONNECTIONS = 10
#: EWS batches should finish within about a minute: 25 items per request at most.
MAX_BATCH = 25


@dataclass(frozen=True, slots=True)
class EwsConfig:
    #: The EWS endpoint, e.g. https://mail.example.com/EWS/Exchange.asmx (no autodiscover by default).
    url: str
    method: Method = "impersonation"
    auth: Auth = "ntlm"
    version: str = "2019"
    #: The service account (impersonation, delegate, dedicated mailbox); unused by "personal".
    username: str = ""
    password: str = field(default="", repr=False)
    #: "personal": each user's own password, by mailbox address (lower case).
    user_passwords: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: OAuth2 client credentials (Exchange Online while EWS is allowed there).
    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    #: The token endpoint's base: ``{authority}/{tenant_id}/oauth2/v2.0/token``.
    authority: str = "https://login.microsoftonline.com"
    #: A CA bundle to trust besides the system's (a private CA, or the sandbox's).
    ca_file: Path | None = None
    #: "dedicated": the mailbox holding one calendar folder per person (default: the service account).
    service_mailbox: str = ""
    #: The zone all-day events are written in (the connector's zone).
    all_day_zone: str = "UTC"
    batch_size: int = MAX_BATCH
    #: Connections (requests in flight) per account used to log in.
    max_connections: int = MAX_CONNECTIONS
    #: An ErrorServerBusy back-off (or 503 Retry-After) is waited out in place while the waits of one call
    #: stay within this; beyond it the ops become ``ThrottledError`` so the job is retried later.
    max_retry_wait_s: float = 10.0
    timeout_s: float = 60.0
    autodiscover: bool = False

    def __post_init__(self) -> None:
        problems = []
        if self.version not in VERSION_BUILDS:
            problems.append(
                f"unknown Exchange version {self.version!r}; use one of {', '.join(VERSION_BUILDS)}"
            )
        if not 1 <= self.batch_size <= MAX_BATCH:
            problems.append(f"batch_size must be 1 to {MAX_BATCH}")
        if not 1 <= self.max_connections <= MAX_CONNECTIONS:
            problems.append(f"max_connections must be 1 to {MAX_CONNECTIONS}")
        if self.method == "personal" and self.auth == "oauth2":
            problems.append("the personal method logs in with each user's password: use ntlm or basic")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def build(self) -> tuple[int, ...]:
        return VERSION_BUILDS[self.version]

    @property
    def token_url(self) -> str:
        return f"{self.authority.rstrip('/')}/{self.tenant_id}/oauth2/v2.0/token"

    @property
    def login(self) -> str:
        """Who logs in, for messages: the service account, the app, or "each user"."""
        if self.auth == "oauth2":
            return f"app {self.client_id}"
        return "each user" if self.method == "personal" else self.username

    @property
    def dedicated_mailbox(self) -> str:
        return (self.service_mailbox or self.username).lower()
