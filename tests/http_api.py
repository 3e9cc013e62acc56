"""A small JSON web API on 127.0.0.1 for the web API source's tests: a real HTTP server in a thread. Each
test sets how it answers (``answer``), and the server records every request it received."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Seen:
    """One request as the server got it; header names in lower case."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    url: str


@dataclass
class Answer:
    status: int = 200
    #: Parsed JSON to send, or ``bytes`` to send as they are.
    body: Any = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


class ApiServer:
    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.answer: Callable[[Seen], Answer] = lambda seen: Answer(404, {"error": "no answer set"})
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for the next poll, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="api", daemon=True
        )

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def paths(self) -> list[str]:
        with self._lock:
            return [seen.path for seen in self.requests]

    def _record(self, seen: Seen) -> Answer:
        with self._lock:
            self.requests.append(seen)
        return self.answer(seen)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                seen = Seen(
                    path=parts.path,
                    query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    headers={name.lower(): value for name, value in self.headers.items()},
                    url=self.path,
                )
                answer = api._record(seen)
                body = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
                try:
                    self.send_response(answer.status)
                    if "content-type" not in {name.lower() for name in answer.headers}:
                        self.send_header("Content-Type", "application/json")
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up (its timeout): nothing to answer any more.
                    return

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


def serve() -> Iterator[ApiServer]:
    server = ApiServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
