"""Keeping a tenant's calendars in a JSON file between runs (``connector sandbox --data FILE`` and the
embedded sandbox of ``make run``): loaded at start, written atomically when asked and at stop."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from sandbox.tenant import Folder, Item, Tenant

FORMAT = 1


def _item_json(item: Item) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in Item.__slots__:
        value = getattr(item, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif name == "extended":
            value = [[list(key), v] for key, v in value]
        elif isinstance(value, tuple):
            value = list(value)
        data[name] = value
    return data


def _item(data: dict[str, Any]) -> Item:
    values = dict(data)
    for name in ("start", "end", "created", "modified"):
        values[name] = datetime.fromisoformat(values[name])
    values["categories"] = tuple(values["categories"])
    values["attendees"] = tuple(values["attendees"])
    values["extended"] = tuple((tuple(key), v) for key, v in values["extended"])
    return Item(**values)


def save(tenant: Tenant, path: Path) -> None:
    folders = {
        m.address: [vars(f) for key, f in m.folders.items() if key != "calendar"] for m in tenant.mailboxes()
    }
    calendars = {m.address: m.calendar.id for m in tenant.mailboxes()}
    doc = {
        "format": FORMAT,
        "calendars": calendars,
        "folders": folders,
        "items": [_item_json(i) for i in tenant.all_items()],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(doc, handle, ensure_ascii=False)
    os.replace(tmp, path)


def load(tenant: Tenant, path: Path) -> None:
    """Restore calendars saved by ``save`` into a tenant built from the same tenant file."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT:
            raise ValueError(f"format {doc.get('format')!r}, expected {FORMAT}")
        for address, calendar_id in doc["calendars"].items():
            if tenant.has_mailbox(address):
                tenant.mailbox(address).calendar.id = calendar_id
        for address, folders in doc["folders"].items():
            if tenant.has_mailbox(address):
                for folder in folders:
                    tenant.mailbox(address).folders[folder["id"]] = Folder(**folder)
        items = [_item(i) for i in doc["items"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"sandbox data file {path} cannot be loaded ({exc}); delete it to start with empty calendars"
        ) from exc
    for item in items:
        if tenant.has_mailbox(item.mailbox):
            tenant.put_item(item)
