"""From source items to what each mailbox should hold, with every bad entry quarantined (DESIGN §4.9).

Bad data never stops a run: an entry that cannot become an event is recorded with a reason an admin
can act on and skipped; everything else goes on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from connector.directory import Directory
from connector.models import AllDaySpan, EventSpec, Rejected, ScheduleEntry, TimedSpan
from connector.render import RenderRules, render
from connector.state import QuarantineEntry


@dataclass(frozen=True, slots=True)
class TextLimits:
    """What Exchange accepts (subject and location: 255 characters; the body is bounded by message size
    limits, far above any schedule note; we keep well under them)."""

    subject: int = 255
    location: int = 255
    body: int = 100_000


@dataclass
class Prepared:
    #: mailbox address → source key → spec, for enabled targets only.
    specs: dict[str, dict[str, EventSpec]] = field(default_factory=dict)
    quarantined: list[QuarantineEntry] = field(default_factory=list)
    #: Source keys whose row is quarantined: their existing events are left alone, never deleted
    #: (the row is broken, not gone).
    protected: set[str] = field(default_factory=set)
    #: Every item the source yielded, good or bad (an empty source is a warning sign, DESIGN §4.5).
    source_items: int = 0
    disabled_skipped: int = 0
    #: Mailboxes with at least one valid entry (kept even when the specs themselves are not).
    mailboxes: set[str] = field(default_factory=set)

    def quarantined_for(self, mailbox: str) -> int:
        return sum(1 for q in self.quarantined if q.mailbox == mailbox)


def prepare(
    items: Iterable[ScheduleEntry | Rejected],
    directory: Directory,
    rules: RenderRules,
    limits: TextLimits | None = None,
    *,
    keep_specs: bool = True,
) -> Prepared:
    """Validate and render every item. Without ``keep_specs`` the rendered specs are dropped once
    checked: the fan-out of a run needs the quarantine and the mailboxes, not the events, and so holds
    no more than the source keys however large the source is."""
    limits = limits or TextLimits()
    out = Prepared()
    for enabled in directory.enabled():
        out.specs[enabled.address] = {}
    first_seen: dict[str, str] = {}

    def quarantine(key: str, owner: str, reason: str, origin: str) -> None:
        owner_target = directory.resolve(owner) if owner else None
        out.quarantined.append(
            QuarantineEntry(
                source_key=key,
                owner=owner,
                reason=reason,
                mailbox=owner_target.address if owner_target else None,
                origin=origin,
            )
        )
        if key:
            out.protected.add(key)

    for item in items:
        out.source_items += 1
        if isinstance(item, Rejected):
            quarantine(item.source_key, item.owner, item.reason, item.origin)
            continue
        where = f" (first at {first_seen[item.source_key]})" if first_seen.get(item.source_key) else ""
        if item.source_key in first_seen:
            quarantine(
                item.source_key,
                item.owner,
                f"key {item.source_key} appears more than once{where} — keys must be unique in the source",
                item.origin,
            )
            continue
        first_seen[item.source_key] = item.origin
        target = directory.resolve(item.owner)
        if target is None:
            quarantine(
                item.source_key,
                item.owner,
                f"owner '{item.owner}' is not in the target directory — add it to the targets or fix the owner",
                item.origin,
            )
            continue
        if not target.enabled:
            out.disabled_skipped += 1
            continue
        problem = _span_problem(item)
        if problem:
            quarantine(item.source_key, item.owner, problem, item.origin)
            continue
        spec = render(item, target, rules)
        problem = _text_problem(spec, limits)
        if problem:
            quarantine(item.source_key, item.owner, problem, item.origin)
            continue
        out.mailboxes.add(target.address)
        if keep_specs:
            out.specs.setdefault(target.address, {})[item.source_key] = spec
    return out


def _span_problem(entry: ScheduleEntry) -> str | None:
    span = entry.span
    if isinstance(span, TimedSpan):
        if span.end < span.start:
            return (
                f"ends ({span.end.isoformat()}) before it starts ({span.start.isoformat()})"
                " — fix the times in the source"
            )
    elif isinstance(span, AllDaySpan) and span.end <= span.start:
        return f"all-day entry ends ({span.end}) on or before its first day ({span.start}) — fix the dates"
    return None


def _text_problem(spec: EventSpec, limits: TextLimits) -> str | None:
    for name, value, limit in (
        ("title", spec.subject, limits.subject),
        ("location", spec.location, limits.location),
        ("body", spec.body, limits.body),
    ):
        if len(value) > limit:
            return (
                f"{name} is {len(value)} characters long; Exchange accepts at most {limit}"
                f" — shorten it in the source or change the {name} template"
            )
    return None
