"""Access tokens the sandbox's authority issues to app registrations (client credentials), and the
lookup both faces use to turn a bearer token back into the calling app."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sandbox.tenant import AppRegistration, Principal

if TYPE_CHECKING:
    from sandbox.server import Sandbox

TOKEN_LIFETIME_S = 3600


@dataclass(frozen=True, slots=True)
class IssuedToken:
    client_id: str
    scope: str
    expires_at: float


class TokenService:
    def __init__(self, sandbox: Sandbox, lifetime_s: int = TOKEN_LIFETIME_S) -> None:
        self._sandbox = sandbox
        self.lifetime_s = lifetime_s
        self._lock = threading.Lock()
        self._tokens: dict[str, IssuedToken] = {}

    def issue(self, app: AppRegistration, scope: str) -> tuple[str, int]:
        token = "sbx." + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = IssuedToken(app.client_id, scope, time.time() + self.lifetime_s)
        return token, self.lifetime_s

    def principal(self, token: str) -> Principal | None:
        """The app a live token was issued to, as the tenant knows it now (grants may have changed)."""
        with self._lock:
            issued = self._tokens.get(token)
        if issued is None or issued.expires_at < time.time():
            return None
        app = self._sandbox.tenant.apps.get(issued.client_id)
        return Principal("app", app.client_id, app=app) if app else None

    def scope(self, token: str) -> str | None:
        with self._lock:
            issued = self._tokens.get(token)
        return issued.scope if issued else None

    def expire_all(self) -> None:
        """Make every issued token stale (tests of token refresh)."""
        with self._lock:
            self._tokens = {t: IssuedToken(i.client_id, i.scope, 0.0) for t, i in self._tokens.items()}

    def reset(self) -> None:
        with self._lock:
            self._tokens.clear()
