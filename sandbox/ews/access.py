"""Who is calling and which mailboxes they may touch.

Authentication: HTTP Basic (a service account, or a mailbox's own password) or an OAuth bearer token the
sandbox's authority issued to an app. Mailbox selection: the ``ExchangeImpersonation`` header (service
accounts with ApplicationImpersonation; app-only tokens must use it, as in Exchange Online), otherwise
the caller's own mailbox. Reaching another mailbox without impersonation is delegate access.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from lxml import etree

from sandbox.ews.errors import (
    ACCESS_DENIED,
    IMPERSONATE_USER_DENIED,
    IMPERSONATION_HEADER,
    NON_EXISTENT_MAILBOX,
    EwsError,
    request_fault,
)
from sandbox.ews.soap import t
from sandbox.tenant import Principal, Tenant
from sandbox.tokens import TokenService

#: Scopes of a token meant for Graph; Exchange refuses them (wrong audience).
_GRAPH_AUDIENCE = "graph.microsoft.com"


def authenticate(tenant: Tenant, tokens: TokenService, authorization: str | None) -> Principal | None:
    """The principal behind an Authorization header, or None for missing or bad credentials."""
    if not authorization or " " not in authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, sep, password = decoded.partition(":")
        if not sep:
            return None
        # DOMAIN\user is accepted as user, as Exchange accepts the down-level logon name.
        return tenant.check_basic(username.rpartition("\\")[2], password)
    if scheme == "bearer":
        token = value.strip()
        principal = tokens.principal(token)
        scope = tokens.scope(token) or ""
        if principal is None or principal.app is None or not principal.app.ews:
            return None
        if _GRAPH_AUDIENCE in scope.lower():
            return None
        return principal
    return None


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    #: The impersonated mailbox (ExchangeImpersonation), lower case.
    impersonating: str | None = None

    @property
    def name(self) -> str:
        return self.principal.name

    def own_mailbox(self, tenant: Tenant) -> str | None:
        """The mailbox requests act on by default: the impersonated one, else the caller's own."""
        if self.impersonating:
            return self.impersonating
        if self.principal.kind in ("user", "service") and tenant.has_mailbox(self.principal.name):
            return self.principal.name.lower()
        return None


def _impersonated_address(header: etree._Element) -> str | None:
    sid = header.find(t("ConnectingSID"))
    if sid is None:
        return None
    for tag in ("PrimarySmtpAddress", "SmtpAddress", "PrincipalName"):
        value = sid.findtext(t(tag))
        if value and value.strip():
            return value.strip().lower()
    return None


def resolve_caller(tenant: Tenant, principal: Principal, impersonation: etree._Element | None) -> Caller:
    """Apply the ExchangeImpersonation header. Refusals are SOAP faults, as Exchange sends them."""
    if impersonation is None:
        if principal.kind == "app":
            raise request_fault(
                IMPERSONATION_HEADER,
                "ExchangeImpersonation SOAP header must be present for this type of OAuth token.",
            )
        return Caller(principal)
    address = _impersonated_address(impersonation)
    if address is None:
        raise request_fault(
            IMPERSONATION_HEADER, "The impersonation header names no SMTP address or principal name."
        )
    if principal.kind == "app":
        assert principal.app is not None
        if not tenant.has_mailbox(address):
            raise request_fault(
                NON_EXISTENT_MAILBOX, f"The SMTP address {address} has no mailbox associated with it."
            )
        if not principal.app.may_reach(address):
            raise request_fault(ACCESS_DENIED, f"The application may not access the mailbox {address}.")
        return Caller(principal, address)
    allowed = (
        principal.service.may_impersonate(address)
        if principal.kind == "service" and principal.service is not None
        else principal.name.lower() == address
    )
    if not allowed:
        raise request_fault(
            IMPERSONATE_USER_DENIED,
            f"The account does not have permission to impersonate the requested user {address}.",
        )
    if not tenant.has_mailbox(address):
        raise request_fault(
            NON_EXISTENT_MAILBOX, f"The SMTP address {address} has no mailbox associated with it."
        )
    return Caller(principal, address)


def check_mailbox(tenant: Tenant, caller: Caller, address: str) -> str:
    """May ``caller`` work in ``address``'s mailbox? Returns the normalised address or raises the
    per-item error (ErrorNonExistentMailbox, ErrorAccessDenied)."""
    address = address.strip().lower()
    if not tenant.has_mailbox(address):
        raise EwsError(NON_EXISTENT_MAILBOX, f"The SMTP address {address} has no mailbox associated with it.")
    if address == caller.own_mailbox(tenant):
        return address
    service = caller.principal.service
    if caller.impersonating is None and service is not None and service.may_delegate(address):
        return address
    raise EwsError(ACCESS_DENIED, f"Access is denied. Check credentials and try again. ({address})")
