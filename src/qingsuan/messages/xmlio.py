"""XML plumbing: safe parsing, XSD validation, xsdata binding and serialisation.

Inbound bytes go through, in order: a size limit, a hardened lxml parser (no entity
resolution, no DTD, no network, no huge trees; any DOCTYPE is refused), a check of the root
``Document`` namespace, validation against the official XSD (shipped in ``xsd/`` and loaded
with :mod:`importlib.resources`, compiled once per thread), and only then binding to the
generated xsdata dataclasses. Outbound objects are serialised by xsdata and validated
against the same XSD before the bytes are returned.
"""

from __future__ import annotations

import re
import threading
from importlib import resources
from typing import Any, Final, TypeVar

from lxml import etree
from xsdata.formats.dataclass.context import XmlContext
from xsdata.formats.dataclass.parsers import XmlParser
from xsdata.formats.dataclass.parsers.config import ParserConfig
from xsdata.formats.dataclass.parsers.handlers import LxmlEventHandler
from xsdata.formats.dataclass.serializers import XmlSerializer
from xsdata.formats.dataclass.serializers.config import SerializerConfig
from xsdata.formats.dataclass.serializers.writers import LxmlEventWriter

from . import codes
from .errors import Reject
from .model import (
    CAMT029,
    CAMT052,
    CAMT053,
    CAMT056,
    CAMT060,
    HEAD001,
    PACS002,
    PACS003,
    PACS004,
    PACS008,
    PACS009,
    PACS028,
)

T = TypeVar("T")

ISO_NAMESPACE_PREFIX: Final = "urn:iso:std:iso:20022:tech:xsd:"

#: Every message whose XSD ships in ``qingsuan/messages/xsd`` (tools/gen_messages.sh).
MESSAGE_TYPES: Final = (
    PACS008, PACS009, PACS002, PACS004, PACS003, PACS028, CAMT056, CAMT029, CAMT053, CAMT052,
    CAMT060, HEAD001,
)

#: Inbound messages larger than this are refused before any parsing (a parameter of the
#: decoding functions).
DEFAULT_MAX_BYTES: Final = 1 << 20

_NS_RE: Final = re.compile(r"\{[^}]*\}")
_local = threading.local()
_CONTEXT: Final = XmlContext()
_PARSER_CONFIG: Final = ParserConfig(
    load_dtd=False, resolve_entities=False, process_xinclude=False,
    fail_on_unknown_properties=True, fail_on_unknown_attributes=False,
    fail_on_converter_warnings=True,
)
_SERIALIZER_CONFIG: Final = SerializerConfig(encoding="UTF-8", xml_declaration=True, indent="  ")


def namespace(message_type: str) -> str:
    """``pacs.008.001.08`` -> ``urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08``."""
    return ISO_NAMESPACE_PREFIX + message_type


def safe_parser() -> etree.XMLParser:
    """An lxml parser that cannot be made to expand entities, fetch anything or go huge."""
    return etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
        dtd_validation=False, attribute_defaults=False, remove_comments=True,
        remove_pis=True, collect_ids=False, recover=False,
    )


def xsd_bytes(message_type: str) -> bytes:
    """The official XSD of a message, from the package data."""
    if message_type not in MESSAGE_TYPES:
        raise KeyError(message_type)
    return resources.files(__package__).joinpath("xsd").joinpath(
        f"{message_type}.xsd").read_bytes()


def schema(message_type: str) -> etree.XMLSchema:
    """The compiled XSD of a message, cached per thread (validators are not shared)."""
    cache: dict[str, etree.XMLSchema] | None = getattr(_local, "schemas", None)
    if cache is None:
        cache = {}
        _local.schemas = cache
    compiled = cache.get(message_type)
    if compiled is None:
        compiled = etree.XMLSchema(etree.fromstring(xsd_bytes(message_type), safe_parser()))
        cache[message_type] = compiled
    return compiled


def read_document(xml: object, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Parse inbound bytes safely into an lxml element; :class:`Reject` (FF01) otherwise."""
    if not isinstance(xml, bytes | bytearray | memoryview):
        raise Reject(codes.FF01, f"a message must be bytes, got {type(xml).__name__}")
    data = bytes(xml)
    if len(data) > max_bytes:
        raise Reject(codes.FF01, f"message is {len(data)} bytes; the limit is {max_bytes}")
    if not data.strip():
        raise Reject(codes.FF01, "empty message")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise Reject(codes.FF01, "DOCTYPE and ENTITY declarations are not allowed")
    try:
        root = etree.fromstring(data, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise Reject(codes.FF01, f"not well-formed XML: {exc}") from None
    except (ValueError, etree.LxmlError) as exc:
        raise Reject(codes.FF01, f"unreadable XML: {exc}") from None
    if root is None:
        raise Reject(codes.FF01, "empty message")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise Reject(codes.FF01, "DOCTYPE and ENTITY declarations are not allowed")
    return root


def message_type_of(root: etree._Element) -> str:
    """The message type named by the root element's namespace (FF01 if not ours)."""
    qname = etree.QName(root)
    ns = qname.namespace or ""
    if qname.localname != "Document":
        raise Reject(codes.FF01, f"root element must be Document, got {qname.localname}",
                     f"/{qname.localname}")
    if not ns.startswith(ISO_NAMESPACE_PREFIX):
        raise Reject(codes.FF01, f"not an ISO 20022 namespace: {ns!r}", "/Document")
    message_type = ns[len(ISO_NAMESPACE_PREFIX):]
    if message_type not in MESSAGE_TYPES or message_type == HEAD001:
        raise Reject(codes.FF01, f"unsupported message type {message_type}", "/Document")
    return message_type


def header_id(root: etree._Element) -> str | None:
    """The message id (``GrpHdr/MsgId`` or ``Assgnmt/Id``) if it can be read, before
    validation, so that even an invalid message can be rejected by reference."""
    ns = etree.QName(root).namespace
    if not ns:
        return None
    for path in (f"./*/{{{ns}}}GrpHdr/{{{ns}}}MsgId", f"./*/{{{ns}}}Assgnmt/{{{ns}}}Id"):
        el = root.find(path)
        if el is not None:
            text: str | None = el.text
            if text and 0 < len(text) <= 35 and text.strip() == text:
                return text
            return None
    return None


def element_path(el: etree._Element) -> str:
    """A readable path of local names, with [n] only where siblings share a name."""
    parts: list[str] = []
    node: etree._Element | None = el
    while node is not None:
        name = etree.QName(node).localname
        parent = node.getparent()
        if parent is not None:
            same = [c for c in parent if c.tag == node.tag]
            if len(same) > 1:
                name = f"{name}[{same.index(node) + 1}]"
        parts.append(name)
        node = parent
    return "/" + "/".join(reversed(parts))


def strip_namespaces(text: str) -> str:
    return _NS_RE.sub("", text)


def validate(root: etree._Element, message_type: str) -> None:
    """Validate against the XSD; :class:`Reject` FF01 naming the first offending element."""
    compiled = schema(message_type)
    if compiled.validate(root):
        return
    errors = list(compiled.error_log)
    if not errors:
        raise Reject(codes.FF01, f"not valid against the {message_type} schema")
    first = errors[0]
    path: str | None = None
    if first.path:
        try:
            found = root.getroottree().xpath(first.path)
        except etree.LxmlError:
            found = None
        if isinstance(found, list) and found and isinstance(found[0], etree._Element):
            path = element_path(found[0])
    message = strip_namespaces(first.message)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    raise Reject(codes.FF01, f"schema {message_type}: {message}{more}", path)


def bind(root: etree._Element, cls: type[T]) -> T:
    """Bind a validated element tree to a generated xsdata class. Consumes the tree."""
    parser = XmlParser(config=_PARSER_CONFIG, context=_CONTEXT, handler=LxmlEventHandler)
    return parser.parse(root, cls)


def serialize(document: Any, message_type: str) -> bytes:
    """Serialise a generated ``Document`` and check it against its XSD before returning it."""
    serializer = XmlSerializer(config=_SERIALIZER_CONFIG, context=_CONTEXT,
                               writer=LxmlEventWriter)
    data = serializer.render(document, ns_map={None: namespace(message_type)}).encode("utf-8")
    root = etree.fromstring(data, safe_parser())
    try:
        validate(root, message_type)
    except Reject as exc:
        raise ValueError(f"built {message_type} is not schema-valid: {exc.message}"
                         f" at {exc.element_path}") from None
    return data
