"""Turn a schedule entry into the event the calendar should hold (an ``EventSpec``).

Templates use ``str.format`` field syntax restricted to plain names (``{title}``, ``{project}``): the
built-in fields below plus any extra column of the source row. Attribute and index access are refused
at settings load, so a template can never reach into Python objects.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, replace

from connector.models import (
    AllDaySpan,
    EventSpec,
    ScheduleEntry,
    Sensitivity,
    ShowAs,
    Span,
    Target,
    TargetKind,
    TimedSpan,
)

#: Bump when rendering changes in a way that must reach every existing event on the next sync.
RENDER_VERSION = 1

BUILTIN_FIELDS = frozenset(
    {"title", "body", "location", "category", "owner", "source_key", "host_app", "display_name", "mailbox"}
)

DEFAULT_NOTICE = (
    "This event is managed by {host_app} and is updated automatically. "
    "Changes made in Outlook will be overwritten; change it in {host_app} instead."
)

# Characters XML 1.0 cannot carry (EWS would reject the whole request). Tab, LF and CR are allowed.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
REPLACEMENT = "\ufffd"


def clean_text(text: str) -> str:
    """Replace characters no Exchange protocol can carry, so one odd byte never fails a request."""
    return _XML_INVALID.sub(REPLACEMENT, text)


def template_fields(template: str) -> list[str]:
    """The field names a template uses. Raises ``ValueError`` for syntax we do not allow."""
    names: list[str] = []
    for _literal, field_name, format_spec, conversion in string.Formatter().parse(template):
        if field_name is None:
            continue
        if not field_name.isidentifier():
            raise ValueError(
                f"field {{{field_name}}} is not a plain name — use names like {{title}} or {{project}}"
            )
        if format_spec or conversion:
            raise ValueError(
                f"field {{{field_name}}} has a format spec or conversion, which is not supported"
            )
        names.append(field_name)
    return names


@dataclass(frozen=True, slots=True)
class RenderRules:
    host_app: str
    title_template: str = "{title}"
    body_template: str = "{body}"
    location_template: str = "{location}"
    notice_template: str = DEFAULT_NOTICE
    #: Categories on every event, after the host application's own (which is always first).
    categories: tuple[str, ...] = ()
    default_show_as: ShowAs = ShowAs.BUSY
    default_sensitivity: Sensitivity = Sensitivity.NORMAL
    #: ``None``: reminders off (DESIGN §4.7), unless an entry asks for one.
    default_reminder_minutes: int | None = None


class _Fields(dict[str, str]):
    # A template may name an extra column a particular row lacks; it renders empty rather than failing.
    def __missing__(self, key: str) -> str:
        return ""


def _fields(entry: ScheduleEntry, target: Target, rules: RenderRules) -> Mapping[str, str]:
    fields = _Fields(entry.extra)
    fields.update(
        title=entry.title,
        body=entry.body,
        location=entry.location,
        category=entry.category,
        owner=entry.owner,
        source_key=entry.source_key,
        host_app=rules.host_app,
        display_name=target.display_name,
        mailbox=target.address,
    )
    return fields


def render(entry: ScheduleEntry, target: Target, rules: RenderRules) -> EventSpec:
    fields = _fields(entry, target, rules)
    subject = clean_text(rules.title_template.format_map(fields)).strip()
    location = clean_text(rules.location_template.format_map(fields)).strip()
    text = clean_text(rules.body_template.format_map(fields)).rstrip()
    notice = clean_text(rules.notice_template.format_map(fields)).strip()
    body = f"{text}\n\n— {notice}" if text else f"— {notice}"

    categories = _unique([rules.host_app, entry.category, *rules.categories])
    # A room or a machine is never "free" while booked, whatever the default says.
    default_show_as = ShowAs.BUSY if target.kind is not TargetKind.USER else rules.default_show_as
    show_as = entry.show_as or default_show_as
    sensitivity = entry.sensitivity or rules.default_sensitivity
    reminder = (
        entry.reminder_minutes if entry.reminder_minutes is not None else rules.default_reminder_minutes
    )

    spec = EventSpec(
        source_key=entry.source_key,
        mailbox=target.address,
        subject=subject,
        body=body,
        location=location,
        span=entry.span,
        categories=categories,
        show_as=show_as,
        sensitivity=sensitivity,
        reminder_minutes=reminder,
        content_hash="",
    )
    return _with_hash(spec)


def _unique(values: list[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        value = clean_text(value).strip()
        if value and value.casefold() not in {v.casefold() for v in seen}:
            seen[value] = None
    return tuple(seen)


def span_key(span: Span) -> list[str]:
    """A canonical form of a span: wall clock and zone for timed spans (the instant alone would hide a
    zone change), dates for all-day spans."""
    if isinstance(span, AllDaySpan):
        return ["all-day", span.start.isoformat(), span.end.isoformat()]
    assert isinstance(span, TimedSpan)
    return [
        "timed",
        span.start.replace(tzinfo=None).isoformat(),
        span.end.replace(tzinfo=None).isoformat(),
        span.timezone,
    ]


def content_hash(spec: EventSpec) -> str:
    payload = [
        RENDER_VERSION,
        spec.subject,
        spec.body,
        spec.location,
        span_key(spec.span),
        list(spec.categories),
        spec.show_as.value,
        spec.sensitivity.value,
        spec.reminder_minutes,
    ]
    encoded = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]


def _with_hash(spec: EventSpec) -> EventSpec:
    return replace(spec, content_hash=content_hash(spec))
