"""SOAP envelopes: parsing a request into its header and body, and building responses the way
Exchange 2019 shapes them (``ServerVersionInfo`` in the header, one ``*ResponseMessage`` per input in
the body, SOAP faults for whole-request errors such as ErrorServerBusy)."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

SOAPNS = "http://schemas.xmlsoap.org/soap/envelope/"
MNS = "http://schemas.microsoft.com/exchange/services/2006/messages"
TNS = "http://schemas.microsoft.com/exchange/services/2006/types"
ENS = "http://schemas.microsoft.com/exchange/services/2006/errors"
NSMAP = {"s": SOAPNS, "m": MNS, "t": TNS}

#: Exchange Server 2019 CU12 (15.2.1118.7). "V2017_07_11" is what a 2019 server reports; exchangelib
#: recognises the "V..." form as a server-only string and keeps the version it requested.
SERVER_VERSION = {
    "MajorVersion": "15",
    "MinorVersion": "2",
    "MajorBuildNumber": "1118",
    "MinorBuildNumber": "7",
    "Version": "V2017_07_11",
}

#: RequestServerVersion values an Exchange 2019 server accepts. The last three are newer than the
#: shipped XSD's enumeration; schema.py validates them as "Exchange2016".
ACCEPTED_VERSIONS = frozenset(
    {
        "Exchange2007",
        "Exchange2007_SP1",
        "Exchange2009",
        "Exchange2010",
        "Exchange2010_SP1",
        "Exchange2010_SP2",
        "Exchange2012",
        "Exchange2013",
        "Exchange2013_SP1",
        "Exchange2015",
        "Exchange2016",
        "V2015_10_05",
        "V2016_01_06",
        "V2016_04_13",
        "V2016_07_13",
        "V2016_10_10",
        "V2017_07_11",
        "V2018_01_08",
        "Exchange2019",
    }
)

# No DTDs, no entities, no network: the request body is untrusted input.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def m(tag: str) -> str:
    return f"{{{MNS}}}{tag}"


def t(tag: str) -> str:
    return f"{{{TNS}}}{tag}"


class SoapParseError(Exception):
    """The body is not well-formed XML or not a SOAP envelope (Exchange: ErrorSchemaValidation)."""

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


@dataclass(frozen=True, slots=True)
class SoapRequest:
    header: etree._Element | None
    #: The operation element, e.g. ``m:CreateItem``.
    operation: etree._Element

    @property
    def name(self) -> str:
        return etree.QName(self.operation).localname

    def header_child(self, tag: str) -> etree._Element | None:
        return None if self.header is None else self.header.find(t(tag))

    @property
    def request_version(self) -> str | None:
        elem = self.header_child("RequestServerVersion")
        return None if elem is None else elem.get("Version")


def parse_request(data: bytes) -> SoapRequest:
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (0, 0)
        raise SoapParseError(f"The request failed schema validation: {exc.msg}", line, column) from None
    if root.tag != f"{{{SOAPNS}}}Envelope":
        raise SoapParseError("The request failed schema validation: the root element is not a SOAP Envelope.")
    header = root.find(f"{{{SOAPNS}}}Header")
    body = root.find(f"{{{SOAPNS}}}Body")
    children = [] if body is None else [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1:
        raise SoapParseError("The request failed schema validation: the SOAP Body must hold one operation.")
    return SoapRequest(header, children[0])


def envelope(body_child: etree._Element, *, with_version: bool = True) -> bytes:
    env = etree.Element(f"{{{SOAPNS}}}Envelope", nsmap=NSMAP)
    if with_version:
        header = etree.SubElement(env, f"{{{SOAPNS}}}Header")
        etree.SubElement(header, t("ServerVersionInfo"), SERVER_VERSION)
    body = etree.SubElement(env, f"{{{SOAPNS}}}Body")
    body.append(body_child)
    return bytes(etree.tostring(env, xml_declaration=True, encoding="utf-8"))


def fault(
    code: str,
    message: str,
    values: dict[str, str] | None = None,
    violation: tuple[int, int, str] | None = None,
) -> bytes:
    """A SOAP fault as Exchange sends it for whole-request errors. exchangelib reads the code from
    ``detail/e:ResponseCode`` and, for ErrorServerBusy, ``BackOffMilliseconds`` from ``detail/t:MessageXml``."""
    elem = etree.Element(f"{{{SOAPNS}}}Fault", nsmap={"s": SOAPNS})
    # faultcode is a QName in the types namespace; declare its prefix on the element, as Exchange does.
    etree.SubElement(elem, "faultcode", nsmap={"a": TNS}).text = f"a:{code}"
    faultstring = etree.SubElement(elem, "faultstring")
    faultstring.set("{http://www.w3.org/XML/1998/namespace}lang", "en-US")
    faultstring.text = message
    detail = etree.SubElement(elem, "detail")
    etree.SubElement(detail, f"{{{ENS}}}ResponseCode", nsmap={"e": ENS}).text = code
    etree.SubElement(detail, f"{{{ENS}}}Message", nsmap={"e": ENS}).text = message
    if values or violation:
        xml = etree.SubElement(detail, t("MessageXml"), nsmap={"t": TNS})
        for name, value in (values or {}).items():
            etree.SubElement(xml, t("Value"), Name=name).text = value
        if violation:
            etree.SubElement(xml, t("LineNumber")).text = str(violation[0])
            etree.SubElement(xml, t("LinePosition")).text = str(violation[1])
            etree.SubElement(xml, t("Violation")).text = violation[2]
    return envelope(elem)


def response_message(
    name: str, code: str = "NoError", text: str | None = None, response_class: str | None = None
) -> etree._Element:
    """``m:{name}ResponseMessage`` with ResponseClass, MessageText and ResponseCode in schema order."""
    cls = response_class or ("Success" if code == "NoError" else "Error")
    msg = etree.Element(m(f"{name}ResponseMessage"), ResponseClass=cls)
    if text:
        etree.SubElement(msg, m("MessageText")).text = text
    etree.SubElement(msg, m("ResponseCode")).text = code
    return msg


def operation_response(name: str, messages: list[etree._Element]) -> etree._Element:
    response = etree.Element(m(f"{name}Response"), nsmap={"m": MNS, "t": TNS})
    container = etree.SubElement(response, m("ResponseMessages"))
    container.extend(messages)
    return response
