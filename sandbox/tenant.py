"""The emulated tenant's store: mailboxes, their calendar folders and items, and who may reach them.

One store behind both protocol faces (EWS SOAP and Graph REST), so an item written through one face is
read back through the other unchanged. Framework-free and thread-safe (one lock; every operation is a
short in-memory step).

Times are kept as UTC instants plus the zone the item was written in (an IANA name), which is what both
faces need to answer: EWS sends instants and a Windows zone; Graph sends wall clock and a zone name.
"""

from __future__ import annotations

import base64
import enum
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

#: Extended property key: (property set GUID in lower case, property name, property type).
PropKey = tuple[str, str, str]

CALENDAR = "calendar"


class MailboxKind(enum.StrEnum):
    USER = "user"
    ROOM = "room"
    EQUIPMENT = "equipment"


class TenantError(Exception):
    """Base of the store's own errors; each face turns them into its protocol's error shape."""

    code = "Error"


class MailboxNotFound(TenantError):
    code = "MailboxNotFound"


class ItemNotFound(TenantError):
    code = "ItemNotFound"


class ChangeKeyConflict(TenantError):
    code = "Conflict"


class FolderNotFound(TenantError):
    code = "FolderNotFound"


def new_id(prefix: bytes = b"SBX") -> str:
    """An opaque id in the style of Exchange's: URL-safe base64, stable for the item's life."""
    return base64.urlsafe_b64encode(prefix + uuid.uuid4().bytes).decode().rstrip("=")


def new_change_key() -> str:
    return base64.b64encode(uuid.uuid4().bytes[:12]).decode()


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    mailbox: str
    folder_id: str
    change_key: str
    subject: str = ""
    body: str = ""
    body_type: str = "text"  # "text" | "html"
    location: str = ""
    start: datetime = datetime(1970, 1, 1, tzinfo=UTC)  # aware UTC
    end: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    timezone: str = "UTC"  # IANA name of the zone the item was written in
    is_all_day: bool = False
    categories: tuple[str, ...] = ()
    show_as: str = "busy"  # Graph's names: free tentative busy oof workingElsewhere unknown
    sensitivity: str = "normal"  # normal personal private confidential
    reminder_on: bool = True
    reminder_minutes: int = 15
    response_requested: bool = True
    attendees: tuple[str, ...] = ()
    extended: tuple[tuple[PropKey, str], ...] = ()
    transaction_id: str | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))

    def prop(self, key: PropKey) -> str | None:
        for k, value in self.extended:
            if k == key:
                return value
        return None


def prop_key(set_id: str, name: str, prop_type: str = "String") -> PropKey:
    return (set_id.strip("{}").lower(), name, prop_type)


@dataclass
class Folder:
    id: str
    name: str
    parent_id: str | None = None
    change_key: str = field(default_factory=new_change_key)


@dataclass
class Mailbox:
    address: str
    kind: MailboxKind = MailboxKind.USER
    display_name: str = ""
    #: The mailbox's own password (the "personal credentials" connection method).
    password: str | None = None
    folders: dict[str, Folder] = field(default_factory=dict)

    @property
    def calendar(self) -> Folder:
        return self.folders[CALENDAR]


# -- access ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    username: str
    password: str
    #: Mailboxes this account may impersonate (ApplicationImpersonation); "*" for all.
    impersonate: frozenset[str] = frozenset()
    #: Mailboxes whose calendar this account may edit as a delegate.
    delegate: frozenset[str] = frozenset()

    def may_impersonate(self, mailbox: str) -> bool:
        return "*" in self.impersonate or mailbox in self.impersonate

    def may_delegate(self, mailbox: str) -> bool:
        return "*" in self.delegate or mailbox in self.delegate


@dataclass(frozen=True, slots=True)
class AppRegistration:
    client_id: str
    tenant_id: str
    display_name: str = ""
    secret: str | None = None
    #: PEM of the certificate whose private key signs client assertions.
    certificate_pem: str | None = None
    #: Mailboxes the app may reach (RBAC for Applications / Application Access Policy); "*" for all.
    mailboxes: frozenset[str] = frozenset({"*"})
    #: Whether the app holds Graph's Calendars.ReadWrite and EWS's full_access_as_app.
    graph: bool = True
    ews: bool = True

    def may_reach(self, mailbox: str) -> bool:
        return "*" in self.mailboxes or mailbox in self.mailboxes


@dataclass(frozen=True, slots=True)
class EwsPolicy:
    """Exchange Online's EWS switch-off: when blocked, every EWS call gets 403 + X-EWS-Policy-Reason."""

    allowed: bool = True
    reason: str = "EwsDisabledForTenant"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a mailbox user, a service account, or an app (app-only token)."""

    kind: str  # "user" | "service" | "app"
    name: str  # address, username or client id
    app: AppRegistration | None = None
    service: ServiceAccount | None = None


class Tenant:
    def __init__(
        self,
        *,
        tenant_id: str,
        domain: str,
        mailboxes: Iterable[Mailbox] = (),
        service_accounts: Iterable[ServiceAccount] = (),
        apps: Iterable[AppRegistration] = (),
        ews_policy: EwsPolicy | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.domain = domain
        self._lock = threading.RLock()
        self._mailboxes: dict[str, Mailbox] = {}
        self._items: dict[str, Item] = {}
        self.service_accounts = {s.username.lower(): s for s in service_accounts}
        self.apps = {a.client_id: a for a in apps}
        self.ews_policy = ews_policy or EwsPolicy()
        for mailbox in mailboxes:
            self.add_mailbox(mailbox)

    # -- mailboxes and folders ------------------------------------------------------------------------
    def add_mailbox(self, mailbox: Mailbox) -> Mailbox:
        with self._lock:
            mailbox.address = mailbox.address.lower()
            if CALENDAR not in mailbox.folders:
                mailbox.folders[CALENDAR] = Folder(new_id(b"FLD"), "Calendar")
            self._mailboxes[mailbox.address] = mailbox
            return mailbox

    def mailbox(self, address: str) -> Mailbox:
        with self._lock:
            found = self._mailboxes.get(address.strip().lower())
            if found is None:
                raise MailboxNotFound(f"no mailbox {address} in tenant {self.domain}")
            return found

    def mailboxes(self) -> list[Mailbox]:
        with self._lock:
            return list(self._mailboxes.values())

    def has_mailbox(self, address: str) -> bool:
        with self._lock:
            return address.strip().lower() in self._mailboxes

    def folder(self, address: str, folder_id: str) -> Folder:
        """A folder by id, or the calendar by its well-known name."""
        mailbox = self.mailbox(address)
        with self._lock:
            if folder_id in mailbox.folders:
                return mailbox.folders[folder_id]
            for folder in mailbox.folders.values():
                if folder.id == folder_id:
                    return folder
        raise FolderNotFound(f"no folder {folder_id} in {address}")

    def create_folder(self, address: str, name: str, parent_id: str = CALENDAR) -> Folder:
        mailbox = self.mailbox(address)
        with self._lock:
            parent = self.folder(address, parent_id)
            folder = Folder(new_id(b"FLD"), name, parent.id)
            mailbox.folders[folder.id] = folder
            return folder

    def find_mailbox_of_folder(self, folder_id: str) -> Mailbox:
        with self._lock:
            for mailbox in self._mailboxes.values():
                if folder_id in mailbox.folders or any(f.id == folder_id for f in mailbox.folders.values()):
                    return mailbox
        raise FolderNotFound(f"no folder {folder_id}")

    # -- items ------------------------------------------------------------------------------------------
    def create_item(self, address: str, folder_id: str = CALENDAR, **fields: Any) -> Item:
        """Create an item; a repeated ``transaction_id`` in the same mailbox returns the first item
        (Graph's idempotent create)."""
        with self._lock:
            folder = self.folder(address, folder_id)
            mailbox = self.mailbox(address)
            txn = fields.get("transaction_id")
            if txn:
                for item in self._items.values():
                    if item.mailbox == mailbox.address and item.transaction_id == txn:
                        return item
            item = Item(
                id=new_id(),
                mailbox=mailbox.address,
                folder_id=folder.id,
                change_key=new_change_key(),
                **fields,
            )
            self._items[item.id] = item
            return item

    def item(self, item_id: str) -> Item:
        with self._lock:
            found = self._items.get(item_id)
            if found is None:
                raise ItemNotFound(f"no item {item_id}")
            return found

    def update_item(self, item_id: str, *, if_change_key: str | None = None, **changes: Any) -> Item:
        with self._lock:
            item = self.item(item_id)
            if if_change_key is not None and if_change_key != item.change_key:
                raise ChangeKeyConflict(f"item {item_id} changed since change key {if_change_key}")
            if "extended" in changes:
                merged = dict(item.extended)
                merged.update(dict(changes.pop("extended")))
                # A value of None removes the property (EWS DeleteItemField on an ExtendedFieldURI).
                changes["extended"] = tuple((k, v) for k, v in merged.items() if v is not None)
            updated = replace(item, change_key=new_change_key(), modified=datetime.now(UTC), **changes)
            self._items[item_id] = updated
            return updated

    def delete_item(self, item_id: str, *, if_change_key: str | None = None) -> None:
        with self._lock:
            item = self.item(item_id)
            if if_change_key is not None and if_change_key != item.change_key:
                raise ChangeKeyConflict(f"item {item_id} changed since change key {if_change_key}")
            del self._items[item_id]

    def items(
        self,
        address: str,
        folder_id: str | None = CALENDAR,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        where: Callable[[Item], bool] | None = None,
    ) -> list[Item]:
        """Items of a mailbox (of one folder unless ``folder_id`` is None), optionally only those
        overlapping ``[start, end)``, ordered by start then id."""
        mailbox = self.mailbox(address)
        with self._lock:
            folder = self.folder(address, folder_id).id if folder_id else None
            out = [
                item
                for item in self._items.values()
                if item.mailbox == mailbox.address
                and (folder is None or item.folder_id == folder)
                and (start is None or item.end > start or (item.end == item.start and item.start >= start))
                and (end is None or item.start < end)
                and (where is None or where(item))
            ]
        return sorted(out, key=lambda i: (i.start, i.id))

    def put_item(self, item: Item) -> None:
        """Store an item as it is (restoring saved calendars; the mailbox must exist)."""
        with self._lock:
            self.mailbox(item.mailbox)
            self._items[item.id] = item

    def all_items(self) -> list[Item]:
        with self._lock:
            return list(self._items.values())

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    # -- access -----------------------------------------------------------------------------------------
    def check_basic(self, username: str, password: str) -> Principal | None:
        """A service account or a mailbox's own credentials (user name = address)."""
        with self._lock:
            account = self.service_accounts.get(username.lower())
            if account is not None:
                return (
                    Principal("service", account.username, service=account)
                    if account.password == password
                    else None
                )
            mailbox = self._mailboxes.get(username.lower())
            if mailbox is not None and mailbox.password is not None and mailbox.password == password:
                return Principal("user", mailbox.address)
        return None
