"""One small error hierarchy. Adapters translate library exceptions into these at their boundary
(``raise ... from exc``) so the core and the shell never see a foreign exception type.

Each error carries a message for humans that names the problem and, where one exists, the fix.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error the connector raises on purpose."""

    #: Short stable code, shown in status output and JSON (``"auth"``, ``"throttled"`` ...).
    code = "error"
    #: Whether trying the same thing again later may succeed.
    retryable = False

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} — {self.fix}" if self.fix else self.message


class SettingsError(ConnectorError):
    """The settings cannot be used. ``problems`` lists every problem found, each naming key and fix."""

    code = "settings"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))


class UsageError(ConnectorError):
    """The request itself is wrong (e.g. it names a user who is not an enabled target)."""

    code = "usage"


class SourceError(ConnectorError):
    """The source as a whole could not be read (not one bad row: those are quarantined)."""

    code = "source"
    retryable = True


class TransientError(ConnectorError):
    """A passing failure (timeout, 5xx, reset). ``retry_after`` in seconds when the server said so."""

    code = "transient"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.retry_after = retry_after


class ThrottledError(TransientError):
    """The server asked us to slow down (HTTP 429, ErrorServerBusy)."""

    code = "throttled"


class AuthError(ConnectorError):
    """Our credentials were refused (bad secret, expired certificate, wrong password)."""

    code = "auth"


class PermissionDeniedError(ConnectorError):
    """Authenticated, but not allowed on this mailbox (scoping, impersonation, delegate rights)."""

    code = "permission"


class MailboxNotFoundError(ConnectorError):
    code = "mailbox_not_found"


class EventNotFoundError(ConnectorError):
    """The event we meant to change is gone (deleted in Outlook, or never committed)."""

    code = "event_not_found"


class ConflictError(ConnectorError):
    """The event changed since we read it (stale change key / etag)."""

    code = "conflict"
    retryable = True


class PolicyBlockedError(ConnectorError):
    """The service refuses the protocol itself (e.g. EWS switched off in Exchange Online)."""

    code = "policy_blocked"


class BadDataError(ConnectorError):
    """The server rejected the content of one event. ``field`` names the offending field if known."""

    code = "bad_data"

    def __init__(self, message: str, *, field: str | None = None, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.field = field


#: Errors that concern the whole mailbox: no point sending its other ops.
MAILBOX_FATAL: tuple[type[ConnectorError], ...] = (
    AuthError,
    PermissionDeniedError,
    MailboxNotFoundError,
    PolicyBlockedError,
)
