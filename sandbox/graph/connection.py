"""Dropping a client's connection from inside an ASGI app, for the "reset" and "drop_after_commit" faults.

ASGI has no "close the socket" message, and Starlette wraps ``send`` in closures, so we follow those
closures down to uvicorn's request cycle and abort its transport with SO_LINGER 0: the client sees a
reset, exactly as when a load balancer or a crashed front end drops it. If the transport cannot be found
(another server), we fall back to promising a body we never finish, which also ends in a transport error
on the client's side.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any

from starlette.types import Send


def _find_transport(send: Any, depth: int = 0) -> asyncio.Transport | None:
    if depth > 8 or send is None:
        return None
    owner = getattr(send, "__self__", None)
    transport = getattr(owner, "transport", None)
    if isinstance(transport, asyncio.BaseTransport):
        return transport  # type: ignore[return-value]
    for cell in getattr(send, "__closure__", None) or ():
        try:
            content = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if callable(content):
            found = _find_transport(content, depth + 1)
            if found is not None:
                return found
    return None


async def drop(send: Send) -> None:
    transport = _find_transport(send)
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # linger 0: close with RST, as a reset connection does
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        # Let the server notice the lost connection, so it neither answers nor complains.
        for _ in range(3):
            await asyncio.sleep(0)
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1048576")]})
    await send({"type": "http.response.body", "body": b"{", "more_body": True})
