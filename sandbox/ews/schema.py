"""The EWS schemas (``../shared/reference/ews-xsd``) held against SOAP traffic.

The envelope is not in the schemas, so each child of ``soap:Header`` and ``soap:Body`` is validated on its
own (a SOAP Fault is envelope vocabulary and is skipped). The face rejects a request that fails, with
ErrorSchemaValidation as Exchange does, and, when ``Sandbox.validate_soap`` is on, also checks its own
responses and records every violation in ``Sandbox.soap_violations`` so tests can assert there are none.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import cast

from lxml import etree

from sandbox.ews.soap import ACCEPTED_VERSIONS, SOAPNS, t

#: Where the schemas live: beside the project (``../shared/reference``), or where EWS_XSD_DIR points.
XSD_DIR = Path(
    os.environ.get(
        "EWS_XSD_DIR", str(Path(__file__).resolve().parents[3] / "shared" / "reference" / "ews-xsd")
    )
)
# The shipped XSD predates Exchange 2019's request versions; validate those as the newest it knows.
_XSD_VERSIONS = ACCEPTED_VERSIONS - {"V2017_07_11", "V2018_01_08", "Exchange2019"}
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Violation:
    element: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.element}: line {self.line} col {self.column}: {self.message}"


@lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD_DIR / "messages.xsd")))


def available() -> bool:
    return (XSD_DIR / "messages.xsd").is_file()


def _check(elem: etree._Element) -> list[Violation]:
    schema = _schema()
    with _lock:  # one XMLSchema object; its error log is per call, so serialise
        ok = schema.validate(elem)
        # lxml-stubs do not declare _ErrorLog iterable; it is.
        errors = [] if ok else list(cast(Iterable[etree._LogEntry], schema.error_log))
    name = etree.QName(elem).localname
    return [Violation(name, e.line, e.column, e.message) for e in errors]


def validate_envelope(root: etree._Element) -> list[Violation]:
    """Violations in every Header and Body child of a parsed SOAP envelope."""
    if not available():
        return []
    out: list[Violation] = []
    for part in (root.find(f"{{{SOAPNS}}}Header"), root.find(f"{{{SOAPNS}}}Body")):
        if part is None:
            continue
        for child in part:
            if not isinstance(child.tag, str) or child.tag == f"{{{SOAPNS}}}Fault":
                continue
            version = child.get("Version") if child.tag == t("RequestServerVersion") else None
            if version is not None and version not in _XSD_VERSIONS and version in ACCEPTED_VERSIONS:
                child = etree.fromstring(etree.tostring(child))
                child.set("Version", "Exchange2016")
            out.extend(_check(child))
    return out


def validate_bytes(data: bytes) -> list[Violation]:
    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        return [Violation("Envelope", exc.lineno or 0, exc.offset or 0, f"not well-formed: {exc.msg}")]
    return validate_envelope(root)
