"""What every operation gets: the tenant as it is now, the caller, the request, and the folder lookup
that all item operations share (DistinguishedFolderId with an optional Mailbox, or a FolderId)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from lxml import etree

from sandbox.ews import timezones
from sandbox.ews.access import Caller, check_mailbox
from sandbox.ews.errors import FOLDER_NOT_FOUND, INVALID_ID, NON_EXISTENT_MAILBOX, EwsError
from sandbox.ews.soap import SoapRequest, t
from sandbox.tenant import CALENDAR, Folder, FolderNotFound, MailboxNotFound, Tenant

ROOT_NAMES = frozenset({"root", "msgfolderroot"})
_ROOT_PREFIX = b"ROOT:"


def root_id(address: str) -> str:
    """The mailbox root has no tenant folder; its id encodes the mailbox so a FolderId finds it again."""
    return base64.urlsafe_b64encode(_ROOT_PREFIX + address.encode()).decode()


def _root_address(folder_id: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(folder_id + "=" * (-len(folder_id) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw[len(_ROOT_PREFIX) :].decode(errors="replace") if raw.startswith(_ROOT_PREFIX) else None


@dataclass(frozen=True, slots=True)
class FolderRef:
    mailbox: str
    #: None for the mailbox root.
    folder: Folder | None

    @property
    def id(self) -> str:
        return self.folder.id if self.folder else root_id(self.mailbox)


@dataclass
class Context:
    tenant: Tenant
    caller: Caller
    request: SoapRequest

    @property
    def op(self) -> etree._Element:
        return self.request.operation

    @property
    def context_zone(self) -> str | None:
        """The IANA zone of the TimeZoneContext header, which exchangelib sends with the account's zone."""
        elem = self.request.header_child("TimeZoneContext")
        definition = None if elem is None else elem.find(t("TimeZoneDefinition"))
        if definition is None or not definition.get("Id"):
            return None
        try:
            return timezones.iana_from_windows(definition.get("Id", ""))
        except EwsError:
            return None

    def default_mailbox(self) -> str:
        own = self.caller.own_mailbox(self.tenant)
        if own is None:
            raise EwsError(
                NON_EXISTENT_MAILBOX, "The caller has no mailbox; name one with a Mailbox element."
            )
        return own

    def resolve_folder(self, elem: etree._Element) -> FolderRef:
        """A ``t:DistinguishedFolderId`` or ``t:FolderId``, access-checked."""
        if elem.tag == t("DistinguishedFolderId"):
            name = elem.get("Id", "")
            mailbox_elem = elem.find(t("Mailbox"))
            address = mailbox_elem.findtext(t("EmailAddress")) if mailbox_elem is not None else None
            mailbox = check_mailbox(self.tenant, self.caller, address or self.default_mailbox())
            if name in ROOT_NAMES:
                return FolderRef(mailbox, None)
            if name != CALENDAR:
                raise EwsError(FOLDER_NOT_FOUND, f"The sandbox mailbox has no {name} folder.")
            return FolderRef(mailbox, self.tenant.folder(mailbox, CALENDAR))
        if elem.tag == t("FolderId"):
            folder_id = elem.get("Id", "")
            address = _root_address(folder_id)
            if address is not None:
                return FolderRef(check_mailbox(self.tenant, self.caller, address), None)
            try:
                owner = self.tenant.find_mailbox_of_folder(folder_id)
                mailbox = check_mailbox(self.tenant, self.caller, owner.address)
                return FolderRef(mailbox, self.tenant.folder(mailbox, folder_id))
            except (FolderNotFound, MailboxNotFound):
                raise EwsError(
                    FOLDER_NOT_FOUND, "The specified folder could not be found in the store."
                ) from None
        raise EwsError(INVALID_ID, f"Unsupported folder id element {etree.QName(elem).localname}.")
