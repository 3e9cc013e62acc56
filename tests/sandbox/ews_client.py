"""Real exchangelib accounts against the sandbox's EWS face, with no adapter of ours in between, plus a raw
SOAP poster for the requests exchangelib would never send (malformed XML, invalid characters)."""

from __future__ import annotations

import base64
from typing import Any

import requests
from exchangelib import (  # type: ignore[import-untyped]
    BASIC,
    Account,
    Build,
    CalendarItem,
    Configuration,
    Credentials,
    ExtendedProperty,
    OAuth2Credentials,
    Version,
)
from exchangelib.credentials import BaseCredentials  # type: ignore[import-untyped]
from exchangelib.ewsdatetime import EWSTimeZone  # type: ignore[import-untyped]

from sandbox.server import Sandbox

#: The connector's own property set: the ownership tag both faces read.
SOURCE_SET_ID = "c11ff724-aa03-4555-9952-8fa248a11c3e"
EXCHANGE_2019 = Build(15, 2, 1118, 7)
SERVICE = ("svc-planning@contoso.example", "Sandbox-Pa55!")
DELEGATE_ACCOUNT = ("svc-delegate@contoso.example", "Delegate-Pa55!")
USER_PASSWORD = "User-Pa55!"


class SourceKey(ExtendedProperty):  # type: ignore[misc]
    property_set_id = SOURCE_SET_ID
    property_name = "SourceKey"
    property_type = "String"


def register_source_key() -> None:
    """``CalendarItem.source_key``, registered once per process (exchangelib's registry is global)."""
    if "source_key" not in {f.name for f in CalendarItem.FIELDS}:
        CalendarItem.register("source_key", SourceKey)


def configuration(
    sandbox: Sandbox,
    credentials: BaseCredentials,
    *,
    auth_type: str | None = BASIC,
    guess_version: bool = False,
    max_connections: int | None = None,
    endpoint: str | None = None,
) -> Configuration:
    return Configuration(
        service_endpoint=endpoint or sandbox.ews_url,
        credentials=credentials,
        auth_type=auth_type,
        # No version: exchangelib guesses it from ServerVersionInfo (a ConvertId probe).
        version=None if guess_version else Version(build=EXCHANGE_2019),
        max_connections=max_connections,
    )


def account(
    sandbox: Sandbox,
    address: str,
    access_type: str,
    username: str = SERVICE[0],
    password: str = SERVICE[1],
    **config: Any,
) -> Account:
    """An exchangelib Account, with ``access_type`` always explicit (DESIGN §2)."""
    register_source_key()
    return Account(
        address,
        access_type=access_type,
        config=configuration(sandbox, Credentials(username, password), **config),
        autodiscover=False,
        default_timezone=EWSTimeZone("Europe/Berlin"),
    )


class SandboxOAuth2Credentials(OAuth2Credentials):  # type: ignore[misc]
    """exchangelib's client-credentials flow, pointed at the sandbox authority instead of
    login.microsoftonline.com (exchangelib hard-codes that host in ``token_url``)."""

    def __init__(self, authority: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.authority = authority

    @property
    def token_url(self) -> str:
        return f"{self.authority}/{self.tenant_id}/oauth2/v2.0/token"


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def post_raw(sandbox: Sandbox, body: bytes, authorization: str | None = None) -> requests.Response:
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    if authorization:
        headers["Authorization"] = authorization
    return requests.post(sandbox.ews_url, data=body, headers=headers, timeout=30)


def envelope(operation: str, impersonate: str | None = None, version: str = "Exchange2016") -> bytes:
    """A hand-written SOAP request around ``operation`` (XML text of the body's child)."""
    impersonation = (
        "<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>"
        f"{impersonate}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>"
        if impersonate
        else ""
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
        'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">'
        f'<s:Header><t:RequestServerVersion Version="{version}"/>{impersonation}</s:Header>'
        f"<s:Body>{operation}</s:Body></s:Envelope>"
    ).encode()


def create_item_xml(subject: str, body: str = "") -> str:
    return (
        '<m:CreateItem SendMeetingInvitations="SendToNone">'
        '<m:SavedItemFolderId><t:DistinguishedFolderId Id="calendar"/></m:SavedItemFolderId>'
        f'<m:Items><t:CalendarItem><t:Subject>{subject}</t:Subject><t:Body BodyType="Text">{body}</t:Body>'
        "<t:Start>2027-01-04T08:00:00Z</t:Start><t:End>2027-01-04T09:00:00Z</t:End>"
        "</t:CalendarItem></m:Items></m:CreateItem>"
    )
