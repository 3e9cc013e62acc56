"""Control and inspection over HTTP, for tests and tools that run the sandbox in another process:
``/sandbox/info``, ``/sandbox/log``, ``/sandbox/items``, ``/sandbox/conditions``, ``/sandbox/faults``,
``/sandbox/reset``. Loopback only, like everything the sandbox serves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from sandbox.conditions import Fault
from sandbox.tenant import Item, TenantError

if TYPE_CHECKING:
    from sandbox.server import Sandbox


def item_json(item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "mailbox": item.mailbox,
        "folder_id": item.folder_id,
        "change_key": item.change_key,
        "subject": item.subject,
        "body": item.body,
        "body_type": item.body_type,
        "location": item.location,
        "start": item.start.isoformat(),
        "end": item.end.isoformat(),
        "timezone": item.timezone,
        "is_all_day": item.is_all_day,
        "categories": list(item.categories),
        "show_as": item.show_as,
        "sensitivity": item.sensitivity,
        "reminder_on": item.reminder_on,
        "reminder_minutes": item.reminder_minutes,
        "response_requested": item.response_requested,
        "attendees": list(item.attendees),
        "extended": [{"set": k[0], "name": k[1], "type": k[2], "value": v} for k, v in item.extended],
        "transaction_id": item.transaction_id,
    }


def routes(sandbox: Sandbox) -> list[BaseRoute]:
    async def info(request: Request) -> JSONResponse:
        return JSONResponse(sandbox.info())

    async def request_log(request: Request) -> JSONResponse:
        return JSONResponse([e.to_json() for e in sandbox.log.entries()])

    async def items(request: Request) -> JSONResponse:
        mailbox = request.query_params.get("mailbox")
        try:
            found = sandbox.tenant.items(mailbox, None) if mailbox else sandbox.tenant.all_items()
        except TenantError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse([item_json(i) for i in found])

    async def conditions(request: Request) -> JSONResponse:
        if request.method == "POST":
            try:
                sandbox.conditions.update(**(await request.json()))
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        c = sandbox.conditions
        return JSONResponse(
            {
                "latency_ms": c.latency_ms,
                "jitter_ms": c.jitter_ms,
                "concurrency_limit": c.concurrency_limit,
                "budget": c.budget,
                "budget_window_s": c.budget_window_s,
                "faults": [vars(f) for f in c.faults],
                "peak_concurrency": c.peak_concurrency(),
            }
        )

    async def faults(request: Request) -> JSONResponse:
        if request.method == "DELETE":
            sandbox.conditions.clear_faults()
            return JSONResponse({"faults": []})
        try:
            sandbox.conditions.add_fault(Fault(**(await request.json())))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"faults": [vars(f) for f in sandbox.conditions.faults]})

    async def reset(request: Request) -> JSONResponse:
        sandbox.reset()
        return JSONResponse({"reset": True})

    return [
        Route("/sandbox/info", info),
        Route("/sandbox/log", request_log),
        Route("/sandbox/items", items),
        Route("/sandbox/conditions", conditions, methods=["GET", "POST"]),
        Route("/sandbox/faults", faults, methods=["POST", "DELETE"]),
        Route("/sandbox/reset", reset, methods=["POST"]),
    ]
