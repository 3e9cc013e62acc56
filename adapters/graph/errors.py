"""Graph's answers translated into the connector's errors, at the adapter's edge."""

from __future__ import annotations

from typing import Any

from connector.errors import (
    AuthError,
    BadDataError,
    ConflictError,
    ConnectorError,
    EventNotFoundError,
    MailboxNotFoundError,
    PermissionDeniedError,
    ThrottledError,
    TransientError,
)

#: Graph error codes that mean "no such mailbox" rather than "no such event".
MAILBOX_CODES = {
    "ErrorInvalidUser",
    "MailboxNotEnabledForRESTAPI",
    "ResourceNotFound",
    "Request_ResourceNotFound",
    "ErrorNonExistentMailbox",
}


def scoping_advice(client_id: str) -> str:
    return (
        "grant the app the application permission Calendars.ReadWrite with admin consent, and include this"
        " mailbox in the app's scope: RBAC for Applications (New-ManagementScope, then"
        f" New-ManagementRoleAssignment -App {client_id} -Role 'Application Calendars.ReadWrite'"
        " -CustomResourceScope <scope>) or a legacy Application Access Policy"
        f" (New-ApplicationAccessPolicy -AppId {client_id} -PolicyScopeGroupId <group> -AccessRight RestrictAccess)"
    )


def retry_after(headers: dict[str, str] | Any, default: float = 1.0) -> float:
    value = None
    for key in ("Retry-After", "retry-after"):
        if key in headers:
            value = headers[key]
            break
    try:
        return max(float(value), 0.0) if value is not None else default
    except (TypeError, ValueError):
        return default


def error_for(
    status: int, body: Any, headers: dict[str, str] | Any, *, mailbox: str, client_id: str, on_event: bool
) -> ConnectorError:
    """The error for one failed answer. ``on_event``: the request addressed an event (a 404 then means the
    event is gone; on a mailbox-level request it means the mailbox is)."""
    error = body.get("error", {}) if isinstance(body, dict) else {}
    code = str(error.get("code", "")) if isinstance(error, dict) else ""
    message = str(error.get("message", "")) if isinstance(error, dict) else ""
    detail = f"{code}: {message}" if code else (message or f"HTTP {status}")
    if status == 401:
        return AuthError(
            f"Microsoft Graph refused the app's token for {mailbox} ({detail})",
            fix="check tenant_id, client_id and the client secret or certificate",
        )
    if status == 403:
        return PermissionDeniedError(
            f"the app may not reach the calendar of {mailbox} ({detail})", fix=scoping_advice(client_id)
        )
    if status == 404:
        if on_event and code not in MAILBOX_CODES:
            return EventNotFoundError(f"the event is gone from {mailbox} ({detail})")
        return MailboxNotFoundError(
            f"mailbox {mailbox} was not found ({detail})",
            fix="check the address in the targets; it must be an Exchange Online mailbox",
        )
    if status in (409, 412):
        return ConflictError(f"the event changed meanwhile in {mailbox} ({detail})")
    if status == 429:
        return ThrottledError(
            f"Graph throttled requests to {mailbox} ({detail})", retry_after=retry_after(headers)
        )
    if status in (502, 503, 504) or status >= 500:
        return TransientError(
            f"Graph answered HTTP {status} for {mailbox} ({detail})",
            retry_after=retry_after(headers, 0.0) or None,
        )
    if status == 400:
        return BadDataError(
            f"Graph rejected the event ({detail})",
            field=_field(message),
            fix="check the entry's text and times",
        )
    return ConnectorError(f"Graph answered HTTP {status} for {mailbox} ({detail})")


def _field(message: str) -> str | None:
    # Graph names the property in quotes: "The property 'x' does not exist ..." / "... 'start' ..."
    if "'" in message:
        parts = message.split("'")
        return parts[1] if len(parts) > 2 else None
    return None
