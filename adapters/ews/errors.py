"""exchangelib's exceptions translated into the connector's errors, at the adapter's edge.

Whole-mailbox refusals (no impersonation right, no delegate grant, no such mailbox, bad credentials, EWS
switched off) become the ``MAILBOX_FATAL`` errors, each naming the fix an Exchange admin can run.
"""

from __future__ import annotations

import re

from exchangelib.errors import (  # type: ignore[import-untyped]
    ErrorAccessDenied,
    ErrorCalendarEndDateIsEarlierThanStartDate,
    ErrorImpersonateUserDenied,
    ErrorInternalServerTransientError,
    ErrorInvalidExchangeImpersonationHeaderData,
    ErrorInvalidIdMalformed,
    ErrorInvalidPropertyRequest,
    ErrorInvalidValueForProperty,
    ErrorIrresolvableConflict,
    ErrorItemNotFound,
    ErrorMailboxStoreUnavailable,
    ErrorNonExistentMailbox,
    ErrorSchemaValidation,
    ErrorServerBusy,
    ErrorTimeoutExpired,
    MalformedResponseError,
    RateLimitError,
    TransportError,
    UnauthorizedError,
)
from oauthlib.oauth2 import OAuth2Error  # type: ignore[import-untyped]

from adapters.ews.config import EwsConfig
from connector.errors import (
    AuthError,
    BadDataError,
    ConflictError,
    ConnectorError,
    EventNotFoundError,
    MailboxNotFoundError,
    PermissionDeniedError,
    PolicyBlockedError,
    ThrottledError,
    TransientError,
)

_POLICY_HEADER = re.compile(r"x-ews-policy-reason['\"]?\s*[:=,]\s*['\"]?([A-Za-z0-9_.-]+)", re.IGNORECASE)


class EwsPolicyBlocked(Exception):
    """Raised by our retry policy on HTTP 403 + ``X-EWS-Policy-Reason`` (exchangelib has no class for it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"EWS blocked by policy ({reason})")
        self.reason = reason


def policy_reason(exc: BaseException) -> str | None:
    """The X-EWS-Policy-Reason of a refusal, whichever way it reached us."""
    if isinstance(exc, EwsPolicyBlocked):
        return exc.reason
    if isinstance(exc, TransportError | MalformedResponseError):
        found = _POLICY_HEADER.search(str(exc))
        if found and "403" in str(exc):
            return found.group(1)
    return None


def policy_blocked(url: str, reason: str) -> PolicyBlockedError:
    return PolicyBlockedError(
        f"Exchange refused EWS itself at {url} (HTTP 403, X-EWS-Policy-Reason: {reason}). EWS in Exchange Online"
        " is being retired: tenants are blocked from 2026-10-01 unless the admin allow-lists the app"
        " (EWSEnabled, EwsAllowedAppIDs), and EWS is switched off for good on 2027-04-01",
        fix='switch to Microsoft Graph: set [backend] kind = "graph" and fill in [backend.graph] with an app'
        " registration holding the application permission Calendars.ReadWrite (admin consent). The events"
        " already pushed are adopted, not duplicated: both backends use the same ownership tag, so a verifying"
        " sync after the switch writes nothing",
    )


def impersonation_advice(config: EwsConfig, mailbox: str) -> str:
    if config.auth == "oauth2":
        return (
            f"grant app {config.client_id} the EWS permission full_access_as_app with admin consent and include"
            f" {mailbox} in its scope (RBAC for Applications or an Application Access Policy)"
        )
    return (
        f"give the service account {config.username} the ApplicationImpersonation role: New-ManagementRoleAssignment"
        f" -Name 'Planning connector impersonation' -Role ApplicationImpersonation -User {config.username}"
        " (add -CustomRecipientWriteScope <scope> to limit it to the synced mailboxes)"
    )


def delegate_advice(config: EwsConfig, mailbox: str) -> str:
    return (
        f"give {config.username} editor rights on the calendar: Add-MailboxFolderPermission"
        f" -Identity {mailbox}:\\Calendar -User {config.username} -AccessRights Editor"
    )


def mailbox_error(exc: BaseException, config: EwsConfig, mailbox: str) -> ConnectorError | None:
    """The whole-mailbox error ``exc`` stands for, or None if it is about something smaller."""
    reason = policy_reason(exc)
    if reason is not None:
        return policy_blocked(config.url, reason)
    detail = _detail(exc)
    if isinstance(exc, UnauthorizedError | OAuth2Error):
        return AuthError(
            f"Exchange refused the credentials of {config.login} at {config.url} ({type(exc).__name__})",
            fix="check the user name and password (or tenant_id, client_id and the client secret), and the auth"
            " setting (ntlm, basic or oauth2)",
        )
    if isinstance(exc, ErrorImpersonateUserDenied | ErrorInvalidExchangeImpersonationHeaderData):
        return PermissionDeniedError(
            f"{config.login} may not impersonate {mailbox} ({detail})",
            fix=impersonation_advice(config, mailbox),
        )
    if isinstance(exc, ErrorAccessDenied):
        if config.method in ("delegate", "dedicated"):
            return PermissionDeniedError(
                f"{config.login} has no delegate access to the calendar of {mailbox} ({detail})",
                fix=delegate_advice(config, mailbox),
            )
        if config.method == "personal":
            return PermissionDeniedError(
                f"{mailbox} may not open its own calendar through EWS ({detail})",
                fix="check that EWS is enabled for the user (Set-CASMailbox -EwsEnabled $true)",
            )
        return PermissionDeniedError(
            f"{config.login} may not open the calendar of {mailbox} ({detail})",
            fix=impersonation_advice(config, mailbox),
        )
    if isinstance(exc, ErrorNonExistentMailbox | ErrorMailboxStoreUnavailable):
        return MailboxNotFoundError(
            f"mailbox {mailbox} was not found ({detail})",
            fix="check the address in the targets; it must be a mailbox on this Exchange organisation",
        )
    return None


def error_for(exc: BaseException, config: EwsConfig, mailbox: str) -> ConnectorError:
    """Any exchangelib exception as a connector error (mailbox-level ones first)."""
    if isinstance(exc, ConnectorError):
        return exc
    fatal = mailbox_error(exc, config, mailbox)
    if fatal is not None:
        return fatal
    detail = _detail(exc)
    if isinstance(exc, ErrorServerBusy | RateLimitError):
        wait = float(getattr(exc, "back_off", None) or getattr(exc, "wait", None) or 1.0)
        return ThrottledError(f"Exchange asked to back off {wait:.0f} s ({mailbox})", retry_after=wait)
    if isinstance(exc, ErrorItemNotFound | ErrorInvalidIdMalformed):
        return EventNotFoundError(f"the event is gone from {mailbox} ({detail})")
    if isinstance(exc, ErrorIrresolvableConflict):
        return ConflictError(f"the event changed meanwhile in {mailbox} ({detail})")
    if isinstance(exc, ErrorCalendarEndDateIsEarlierThanStartDate):
        return BadDataError(
            f"Exchange rejected the event ({detail})", field="end", fix="check the entry's times"
        )
    if isinstance(exc, ErrorInvalidValueForProperty | ErrorInvalidPropertyRequest | ErrorSchemaValidation):
        return BadDataError(f"Exchange rejected the event ({detail})", fix="check the entry's text and times")
    if isinstance(exc, ErrorTimeoutExpired | ErrorInternalServerTransientError | TransportError | OSError):
        return TransientError(
            f"no usable answer from Exchange for {mailbox} ({type(exc).__name__}: {detail})"
        )
    return ConnectorError(f"Exchange failed for {mailbox} ({type(exc).__name__}: {detail})")


def _detail(exc: BaseException) -> str:
    # exchangelib's messages may quote whole responses; the first line is what a person needs.
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
