"""ConvertId: exchangelib's version probe sends one (an id "DUMMY" that Exchange calls malformed) and reads
ServerVersionInfo from the answer. Real ids convert between the formats without a store lookup, as on
Exchange, where the formats are encodings of the same entry id."""

from __future__ import annotations

import base64
import binascii

from lxml import etree

from sandbox.ews.context import Context
from sandbox.ews.errors import INVALID_ID, EwsError
from sandbox.ews.soap import m, response_message, t

XSI = "http://www.w3.org/2001/XMLSchema-instance"
_PREFIXES = (b"SBX", b"FLD", b"ROOT:")


def _raw(format_: str, value: str) -> bytes:
    """The entry bytes behind an id in any supported format."""
    try:
        if format_ == "HexEntryId":
            raw = bytes.fromhex(value)
        elif format_ in ("EntryId", "StoreId", "OwaId"):
            raw = base64.b64decode(value, validate=True)
        else:  # EwsId, EwsLegacyId: the tenant's own URL-safe form
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if not raw.startswith(_PREFIXES):
        raise EwsError(INVALID_ID, "Id is malformed.")
    return raw


def _encode(format_: str, raw: bytes) -> str:
    if format_ == "HexEntryId":
        return raw.hex().upper()
    if format_ in ("EntryId", "StoreId", "OwaId"):
        return base64.b64encode(raw).decode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def convert_id(ctx: Context) -> list[etree._Element]:
    destination = ctx.op.get("DestinationFormat", "EwsId")
    out = []
    sources = ctx.op.find(m("SourceIds"))
    for source in [] if sources is None else [c for c in sources if isinstance(c.tag, str)]:
        try:
            if source.tag != t("AlternateId"):
                raise EwsError(INVALID_ID, "The sandbox has no public folders.")
            raw = _raw(source.get("Format", "EwsId"), source.get("Id", ""))
        except EwsError as exc:
            out.append(response_message("ConvertId", exc.code, exc.message))
            continue
        msg = response_message("ConvertId")
        converted = etree.SubElement(msg, m("AlternateId"), nsmap={"xsi": XSI})
        converted.set(f"{{{XSI}}}type", "t:AlternateIdType")
        converted.set("Format", destination)
        converted.set("Id", _encode(destination, raw))
        converted.set("Mailbox", source.get("Mailbox", ""))
        out.append(msg)
    return out
