"""Graph's error shape: ``{"error": {"code", "message", "innerError": {"date", "request-id", ...}}}``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any


class GraphError(Exception):
    """An answer other than success; the face renders it as Graph's error JSON."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(
    code: str, message: str, request_id: str, client_request_id: str | None = None
) -> dict[str, Any]:
    inner: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id or request_id,
    }
    return {"error": {"code": code, "message": message, "innerError": inner}}


def new_request_id() -> str:
    return str(uuid.uuid4())


def access_denied() -> GraphError:
    # Real Graph's text when RBAC for Applications / an Application Access Policy excludes the mailbox.
    return GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")


def bad_request(message: str, code: str = "BadRequest") -> GraphError:
    return GraphError(400, code, message)
