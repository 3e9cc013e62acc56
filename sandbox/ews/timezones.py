"""Windows time zone ids (what EWS carries) ↔ IANA names (what the tenant keeps), from exchangelib's copy
of the CLDR table. The sandbox may import exchangelib's data table; it imports nothing of the connector."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exchangelib.winzone import IANA_TO_MS_TIMEZONE_MAP, MS_TIMEZONE_TO_IANA_MAP  # type: ignore[import-untyped]

from sandbox.ews.errors import INVALID_VALUE, EwsError

_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Z"})


def iana_from_windows(ms_id: str) -> str:
    """The IANA zone for a Windows zone id; an IANA name passes through (some clients send one)."""
    if ms_id in _UTC_NAMES or ms_id == "tzone://Microsoft/Utc":
        return "UTC"
    iana = MS_TIMEZONE_TO_IANA_MAP.get(ms_id)
    if iana is not None:
        return "UTC" if iana in _UTC_NAMES else iana
    if ms_id in IANA_TO_MS_TIMEZONE_MAP:
        return ms_id
    raise EwsError(INVALID_VALUE, f"The time zone id {ms_id!r} is not valid.")


def windows_from_iana(iana: str) -> str:
    if iana in _UTC_NAMES:
        return "UTC"
    entry = IANA_TO_MS_TIMEZONE_MAP.get(iana)
    return entry[0] if entry else "UTC"


def zone(iana: str) -> ZoneInfo:
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def parse_instant(text: str) -> datetime:
    """An xs:dateTime from a request as an aware UTC instant. A value without offset is read as UTC,
    as Exchange does when no TimeZoneContext applies."""
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        raise EwsError(INVALID_VALUE, f"{text!r} is not a valid dateTime.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_instant(value: datetime) -> str:
    """UTC with a ``Z`` and whole seconds: exchangelib parses responses with ``%Y-%m-%dT%H:%M:%SZ``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
