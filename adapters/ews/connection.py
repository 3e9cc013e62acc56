"""exchangelib accounts for the EWS backend, one connection at a time per thread.

exchangelib caches one ``Protocol`` (session pool) per endpoint + credentials. A pool shared by threads
with ``max_connections > 1`` can deadlock in exchangelib 5.6 when several threads get ErrorServerBusy at
once (``decrease_poolsize`` holds the pool lock while ``get_session`` calls ``increase_poolsize``). So every
login gets ``max_connections`` *slots*, each its own ``Protocol`` with exactly one session (the slot number
is part of the credentials, hence of exchangelib's cache key), and a thread checks a slot out for the length
of one call. That also bounds the requests in flight per account (DESIGN §2: stay at ≤ 10).

The retry policy is fail-fast: exchangelib never sleeps on its own. An ErrorServerBusy back-off (or a 503
Retry-After) is waited out here only while it fits ``max_retry_wait_s``; a longer one becomes
``ThrottledError`` so the job is retried later instead of a thread sleeping for minutes.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import requests
from exchangelib import (  # type: ignore[import-untyped]
    BASIC,
    DELEGATE,
    IMPERSONATION,
    NTLM,
    OAUTH2,
    Account,
    Build,
    Configuration,
    Credentials,
    OAuth2Credentials,
    Version,
)
from exchangelib.errors import (  # type: ignore[import-untyped]
    ErrorInternalServerTransientError,
    ErrorServerBusy,
)
from exchangelib.ewsdatetime import EWSTimeZone  # type: ignore[import-untyped]
from exchangelib.folders import Calendar  # type: ignore[import-untyped]
from exchangelib.protocol import BaseProtocol, FailFast, Protocol  # type: ignore[import-untyped]

from adapters.ews.config import EwsConfig
from adapters.ews.errors import EwsPolicyBlocked, error_for
from adapters.ews.items import register_properties
from connector.errors import ConnectorError, ThrottledError
from connector.models import Target

T = TypeVar("T")
AUTH_TYPES = {"ntlm": NTLM, "basic": BASIC, "oauth2": OAUTH2}


class _Policy(FailFast):  # type: ignore[misc]
    """Fail fast, but recognise Exchange Online's EWS block and keep a 503's Retry-After."""

    def raise_response_errors(self, response: requests.Response) -> None:
        reason = response.headers.get("X-EWS-Policy-Reason")
        if response.status_code == 403 and reason:
            raise EwsPolicyBlocked(reason)
        try:
            super().raise_response_errors(response)
        except (ErrorInternalServerTransientError, ErrorServerBusy) as exc:
            retry_after = _retry_after(response)
            if retry_after:
                raise ErrorServerBusy(str(exc.args[0]), back_off=retry_after) from exc
            raise


def _retry_after(response: requests.Response) -> float | None:
    try:
        value = float(response.headers.get("Retry-After", "0"))
    except ValueError:
        return None
    return value if value > 0 else None


class _SlotCredentials(Credentials):  # type: ignore[misc]
    """Username/password plus the slot: equal logins in different slots get different protocols."""

    def __init__(self, username: str, password: str, slot: str) -> None:
        super().__init__(username, password)
        self.slot = slot


class _SlotOAuth2Credentials(OAuth2Credentials):  # type: ignore[misc]
    """Client credentials against the configured authority (exchangelib hard-codes Microsoft's)."""

    def __init__(self, *, token_endpoint: str, slot: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token_endpoint = token_endpoint
        self.slot = slot

    @property
    def token_url(self) -> str:
        return self.token_endpoint


class _CaAdapter(requests.adapters.HTTPAdapter):
    """Trusts an extra CA bundle for registered URL prefixes (exchangelib builds its own sessions, so
    there is no ``verify`` to pass). Other URLs are verified as usual."""

    bundles: ClassVar[dict[str, str]] = {}

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        # Unless verification is off: a REQUESTS_CA_BUNDLE path would otherwise hide the configured CA.
        if kwargs.get("verify", True) is not False:
            for prefix, bundle in self.bundles.items():
                if (request.url or "").startswith(prefix):
                    kwargs["verify"] = bundle
        return super().send(request, *args, **kwargs)


@dataclass
class _Slot:
    key: str
    config: Any  # exchangelib Configuration
    accounts: dict[str, Any]  # mailbox → Account
    folders: dict[str, Any]  # target address → calendar folder


class _Login:
    """The slots of one login (service account, user or app) and who holds them."""

    def __init__(self, slots: list[_Slot]) -> None:
        self.slots = slots
        self._free = list(range(len(slots)))
        self._cond = threading.Condition()
        self._last: dict[str, int] = {}

    @contextmanager
    def slot(self, mailbox: str) -> Iterator[_Slot]:
        with self._cond:
            while not self._free:
                self._cond.wait()
            # The slot this mailbox used last already holds its account and calendar folder.
            preferred = self._last.get(mailbox)
            index = preferred if preferred in self._free else self._free[-1]
            self._free.remove(index)
            self._last[mailbox] = index
        try:
            yield self.slots[index]
        finally:
            with self._cond:
                self._free.append(index)
                self._cond.notify()


class EwsConnection:
    def __init__(self, config: EwsConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        register_properties()
        self.config = config
        self._sleep = sleep
        self._version = Version(build=Build(*config.build))
        self._zone = EWSTimeZone(config.all_day_zone)
        self._lock = threading.Lock()
        self._logins: dict[str, _Login] = {}
        # Part of every slot's credentials: this connection's protocols are its own, and close() ends them.
        self._instance = uuid.uuid4().hex
        if config.ca_file is not None:
            _CaAdapter.bundles[_origin(config.url)] = str(config.ca_file)
            _CaAdapter.bundles[_origin(config.token_url)] = str(config.ca_file)
            BaseProtocol.HTTP_ADAPTER_CLS = _CaAdapter

    # -- logins and slots -------------------------------------------------------------------------------
    def _login_name(self, target: Target) -> str:
        if self.config.method == "personal":
            return target.address.lower()
        return "app" if self.config.auth == "oauth2" else "service"

    def _credentials(self, login: str, slot: str) -> Any:
        config = self.config
        if config.auth == "oauth2":
            return _SlotOAuth2Credentials(
                token_endpoint=config.token_url,
                slot=slot,
                client_id=config.client_id,
                client_secret=config.client_secret,
                tenant_id=config.tenant_id,
            )
        if config.method == "personal":
            password = config.user_passwords.get(login)
            if password is None:
                from connector.errors import AuthError

                raise AuthError(
                    f"no password for {login} in the personal passwords",
                    fix="add the user's address and password to backend.ews.passwords_file",
                )
            return _SlotCredentials(login, password, slot)
        return _SlotCredentials(config.username, config.password, slot)

    def _login(self, target: Target) -> _Login:
        name = self._login_name(target)
        with self._lock:
            login = self._logins.get(name)
            if login is None:
                slots = []
                for n in range(self.config.max_connections):
                    key = f"{self._instance}:{name}:{n}"
                    configuration = Configuration(
                        service_endpoint=self.config.url,
                        credentials=self._credentials(name, key),
                        auth_type=AUTH_TYPES[self.config.auth],
                        version=self._version,
                        retry_policy=_Policy(),
                        max_connections=1,
                    )
                    slots.append(_Slot(key, configuration, {}, {}))
                login = self._logins[name] = _Login(slots)
            return login

    def _account(self, slot: _Slot, mailbox: str) -> Any:
        account = slot.accounts.get(mailbox)
        if account is None:
            # access_type always explicit: exchangelib otherwise picks one from where the credentials sit.
            access = IMPERSONATION if self.config.method == "impersonation" else DELEGATE
            account = Account(
                mailbox,
                access_type=access,
                config=slot.config,
                autodiscover=self.config.autodiscover,
                default_timezone=self._zone,
            )
            account.protocol.TIMEOUT = self.config.timeout_s
            slot.accounts[mailbox] = account
        return account

    def mailbox_of(self, target: Target) -> str:
        """The mailbox the target's events live in."""
        if self.config.method == "dedicated":
            return self.config.dedicated_mailbox
        return target.address.lower()

    def _folder(self, slot: _Slot, account: Any, target: Target) -> Any:
        """The target's calendar folder, cached per slot (``account.calendar`` costs two GetFolder calls)."""
        folder = slot.folders.get(target.address)
        if folder is None:
            folder = account.calendar
            if self.config.method == "dedicated":
                folder = _child_calendar(folder, target)
            slot.folders[target.address] = folder
        return folder

    # -- calls --------------------------------------------------------------------------------------------
    def call(self, target: Target, work: Callable[[Any, Any], T]) -> T:
        """``work(account, folder)`` for ``target`` on a free slot. ErrorServerBusy is waited out while the
        waits fit ``max_retry_wait_s``, then raised as ``ThrottledError``; anything else exchangelib raises
        comes out as a connector error."""
        login = self._login(target)
        mailbox = self.mailbox_of(target)
        waited = 0.0
        while True:
            with login.slot(target.address) as slot:
                try:
                    account = self._account(slot, mailbox)
                    return work(account, self._folder(slot, account, target))
                except ConnectorError:
                    raise
                except (ErrorServerBusy, ErrorInternalServerTransientError) as exc:
                    back_off = float(getattr(exc, "back_off", None) or 1.0)
                except Exception as exc:
                    slot.folders.pop(target.address, None)
                    raise error_for(exc, self.config, target.address) from exc
            if waited + back_off > self.config.max_retry_wait_s:
                raise ThrottledError(
                    f"Exchange asked to back off {back_off:.1f} s before the next request for {target.address}",
                    retry_after=back_off,
                )
            self._sleep(back_off)
            waited += back_off

    def close(self) -> None:
        with self._lock:
            logins, self._logins = list(self._logins.values()), {}
        for login in logins:
            for slot in login.slots:
                try:
                    protocol = Protocol[slot.config]
                except KeyError:
                    continue
                del Protocol[slot.config]
                if not isinstance(protocol[0], Exception):
                    protocol[0].close()


def _child_calendar(parent: Any, target: Target) -> Any:
    """The dedicated mailbox's calendar folder for ``target``, created on first use. Named by address:
    a display name can change, and a renamed folder would orphan every event in it."""
    name = target.address.lower()
    for child in parent.children:
        if str(child.name).lower() == name:
            return child
    folder = Calendar(parent=parent, name=name)
    folder.save()
    return folder


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/"
