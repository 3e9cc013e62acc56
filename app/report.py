"""Turning run results, plans and status into JSON documents and human-readable tables.

The JSON shapes are a public interface (scripts and the host application read them): keys are only
ever added, never renamed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from connector.models import AllDaySpan, Create, Delete, Op, Span, Update
from connector.state import (
    COUNT_NAMES,
    Counts,
    MailboxHealth,
    MailboxResult,
    QuarantineEntry,
    RunRecord,
    RunStatus,
)
from connector.sync import Loaded, MailboxPreview, RunReport
from connector.window import Window

COUNT_KEYS = COUNT_NAMES


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def counts_json(counts: Counts) -> dict[str, int]:
    return {key: getattr(counts, key) for key in COUNT_KEYS}


def window_json(window: Window) -> dict[str, str]:
    return {"start": window.start.isoformat(), "end": window.end.isoformat()}


def quarantine_json(entries: Sequence[QuarantineEntry]) -> list[dict[str, Any]]:
    return [
        {
            "source_key": q.source_key,
            "owner": q.owner,
            "mailbox": q.mailbox,
            "reason": q.reason,
            "origin": q.origin,
            "first_seen": _iso(q.first_seen),
            "last_seen": _iso(q.last_seen),
        }
        for q in entries
    ]


def result_json(result: MailboxResult) -> dict[str, Any]:
    return {
        "address": result.mailbox,
        "status": result.status.value,
        **counts_json(result.counts),
        "error_code": result.error_code,
        "error": result.error,
        "op_errors": [{"source_key": k, "error": e} for k, e in result.op_errors],
        "started_at": _iso(result.started_at),
        "finished_at": _iso(result.finished_at),
    }


def run_json(run: RunRecord) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "status": run.status.value,
        "trigger": run.trigger,
        "mode": run.mode.value,
        "forced": run.forced,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "mailboxes_total": run.mailboxes_total,
        "mailboxes_done": run.mailboxes_done,
        **counts_json(run.counts),
        "error": run.error,
    }


def sync_json(report: RunReport) -> dict[str, Any]:
    doc = run_json(report.run)
    if report.loaded:
        doc["window"] = window_json(report.loaded.window)
        doc["source_items"] = report.loaded.prepared.source_items
    doc["blocked"] = report.blocked
    # Per-mailbox figures cannot count entries whose owner is unknown; the run's total must.
    doc["quarantined"] = len(report.quarantine)
    doc["mailboxes"] = [result_json(r) for r in report.run.results]
    doc["quarantine"] = quarantine_json(report.quarantine)
    return doc


def span_json(span: Span) -> dict[str, Any]:
    if isinstance(span, AllDaySpan):
        return {"all_day": True, "start": span.start.isoformat(), "end": span.end.isoformat()}
    return {
        "all_day": False,
        "start": span.start.isoformat(),
        "end": span.end.isoformat(),
        "timezone": span.timezone,
    }


def op_json(op: Op) -> dict[str, Any]:
    doc: dict[str, Any] = {"op": op.kind.value, "source_key": op.source_key}
    if isinstance(op, Create | Update):
        doc.update(subject=op.spec.subject, when=span_json(op.spec.span))
    if isinstance(op, Update | Delete):
        doc.update(remote_id=op.remote_id, reason=op.reason)
    return doc


def plan_json(loaded: Loaded, previews: Sequence[MailboxPreview]) -> dict[str, Any]:
    mailboxes = []
    totals = dict.fromkeys(COUNT_KEYS, 0)
    for preview in previews:
        plan = preview.plan
        counts = {
            "created": sum(isinstance(op, Create) for op in plan.ops),
            "updated": sum(isinstance(op, Update) for op in plan.ops),
            "deleted": sum(isinstance(op, Delete) for op in plan.ops),
            "unchanged": plan.unchanged,
            "adopted": len(plan.adopt),
            "failed": 0,
            "quarantined": preview.quarantined,
        }
        for key, value in counts.items():
            totals[key] += value
        mailboxes.append(
            {
                "address": preview.target.address,
                "kind": preview.target.kind.value,
                **counts,
                "blocked_reason": plan.blocked_reason,
                "ops": [op_json(op) for op in plan.ops],
            }
        )
    totals["quarantined"] = len(loaded.prepared.quarantined)
    return {
        "window": window_json(loaded.window),
        "source_items": loaded.prepared.source_items,
        **totals,
        "blocked": any(p.plan.blocked_reason for p in previews),
        "mailboxes": mailboxes,
        "quarantine": quarantine_json(loaded.prepared.quarantined),
    }


def health_json(health: MailboxHealth) -> dict[str, Any]:
    """One mailbox's health, as ``connector status --json`` and the HTTP API show it."""
    return {
        "address": health.mailbox,
        "status": health.status.value,
        "healthy": health.error is None,
        "last_run_id": health.last_run_id,
        "last_run_at": _iso(health.last_run_at),
        "last_success_at": _iso(health.last_success_at),
        "error_code": health.error_code,
        "error": health.error,
        "last_counts": counts_json(health.last_counts),
    }


def status_json(
    runs: Sequence[RunRecord], health: Sequence[MailboxHealth], quarantine: Sequence[QuarantineEntry]
) -> dict[str, Any]:
    last = runs[0] if runs else None
    return {
        "last_run": run_json(last) if last else None,
        "runs": [run_json(r) for r in runs],
        "mailboxes": [health_json(h) for h in health],
        "quarantined": len(quarantine),
        "quarantine": quarantine_json(quarantine),
    }


# -- human output ------------------------------------------------------------------------------------


def _count_table(title: str, rows: Sequence[tuple[str, str, Counts, str]]) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("mailbox", no_wrap=True)
    table.add_column("status")
    for key in COUNT_KEYS:
        table.add_column(key, justify="right")
    table.add_column("note", overflow="fold")
    for address, status, counts, note in rows:
        table.add_row(address, status, *(str(getattr(counts, k)) for k in COUNT_KEYS), note)
    return table


def print_sync(console: Console, report: RunReport, *, all_mailboxes: bool = False) -> None:
    run = report.run
    if run.status is RunStatus.FAILED and not run.results:
        console.print(f"[red]Run {run.id} failed:[/red] {run.error}")
        return
    interesting = [
        r
        for r in run.results
        if all_mailboxes or r.counts.writes or r.error or r.counts.failed or r.counts.adopted
    ]
    if interesting:
        rows = [(r.mailbox, r.status.value, r.counts, r.error or _op_errors(r)) for r in interesting]
        console.print(_count_table("Mailboxes with changes or problems", rows))
    c = run.counts
    console.print(
        f"Run {run.id} ({run.mode.value}) {run.status.value}: {run.mailboxes_done} mailboxes —"
        f" {c.created} created, {c.updated} updated, {c.deleted} deleted, {c.unchanged} unchanged,"
        f" {c.adopted} adopted, {c.failed} failed, {len(report.quarantine)} quarantined."
    )
    if report.quarantine:
        console.print(
            "Quarantined entries (fix them in the source): [bold]connector status[/bold] lists them."
        )
    if report.blocked:
        console.print(
            "[yellow]Some mailboxes were held back by the delete guard; see the note above.[/yellow]"
        )


def _op_errors(result: MailboxResult) -> str:
    if not result.op_errors:
        return ""
    key, error = result.op_errors[0]
    more = f" (+{len(result.op_errors) - 1} more)" if len(result.op_errors) > 1 else ""
    return f"{key}: {error}{more}"


def print_plan(
    console: Console, loaded: Loaded, previews: Sequence[MailboxPreview], *, details: bool
) -> None:
    doc = plan_json(loaded, previews)
    for mailbox in doc["mailboxes"]:
        if not mailbox["ops"] and not mailbox["blocked_reason"]:
            continue
        console.print(
            f"[bold]{mailbox['address']}[/bold]"
            + (f"  [red]{mailbox['blocked_reason']}[/red]" if mailbox["blocked_reason"] else "")
        )
        ops = mailbox["ops"] if details else mailbox["ops"][:10]
        for op in ops:
            when = op.get("when", {})
            console.print(
                f"  {op['op']:<7} {op['source_key']:<20} {when.get('start', ''):<26} {op.get('subject', '')}"
                + (f"  ({op['reason']})" if op.get("reason") and op["op"] != "create" else "")
            )
        if len(mailbox["ops"]) > len(ops):
            console.print(f"  … {len(mailbox['ops']) - len(ops)} more (use --details)")
    console.print(
        f"Plan: {doc['created']} to create, {doc['updated']} to update, {doc['deleted']} to delete,"
        f" {doc['unchanged']} unchanged, {doc['adopted']} to adopt, {doc['quarantined']} quarantined"
        f" — across {len(previews)} mailboxes. Nothing was written."
    )


def print_status(
    console: Console,
    runs: Sequence[RunRecord],
    health: Sequence[MailboxHealth],
    quarantine: Sequence[QuarantineEntry],
) -> None:
    if not runs:
        console.print("No run yet. Start one with: connector sync")
    else:
        last = runs[0]
        c = last.counts
        console.print(
            f"Last run {last.id} ({last.trigger}, {last.mode.value}) {last.status.value},"
            f" started {last.started_at:%Y-%m-%d %H:%M:%S %Z}: {c.created} created, {c.updated} updated,"
            f" {c.deleted} deleted, {c.unchanged} unchanged, {c.failed} failed."
            + (f" Error: {last.error}" if last.error else "")
        )
    if health:
        table = Table(title="Mailboxes", title_justify="left", show_edge=False)
        table.add_column("mailbox", no_wrap=True)
        for column in ("status", "last run", "last success", "problem"):
            table.add_column(column, overflow="fold")
        for h in health:
            table.add_row(
                h.mailbox,
                h.status.value if h.error is None else f"[red]{h.status.value}[/red]",
                f"{h.last_run_at:%Y-%m-%d %H:%M}" if h.last_run_at else "—",
                f"{h.last_success_at:%Y-%m-%d %H:%M}" if h.last_success_at else "never",
                h.error or "",
            )
        console.print(table)
    if quarantine:
        table = Table(title=f"Quarantined entries ({len(quarantine)})", title_justify="left", show_edge=False)
        for column in ("key", "owner", "where", "reason"):
            table.add_column(column, overflow="fold")
        for q in quarantine:
            table.add_row(q.source_key or "—", q.owner or "—", q.origin, q.reason)
        console.print(table)
    else:
        console.print("No quarantined entries.")
