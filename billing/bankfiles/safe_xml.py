"""Parsing XML that came from outside: bank files uploaded by staff or dropped by a job.

A bank file is untrusted input. libxml2 will happily fetch external entities
(XXE: ``file:///etc/passwd``, internal network URLs), expand nested entities
until memory runs out (billion laughs) and follow a DTD from the network. ISO
20022 messages never need a DTD or an entity, so the simplest safe rule is to
refuse any document that has a DOCTYPE at all: first on the raw bytes (before
libxml2 sees them), then again on what the parser reports, in case an encoding
trick hid the declaration from the byte check.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _
from lxml import etree

from afas_sb.errors import DomainError

DEFAULT_MAX_BYTES = 50 * 1024 * 1024

# Case-insensitive and tolerant of whitespace after "<!": libxml2 rejects
# "<! DOCTYPE", but the check must not depend on that.
_DOCTYPE = re.compile(rb"<!\s*(doctype|entity)", re.IGNORECASE)
# UTF-16/UTF-32 byte order marks: ISO 20022 files are UTF-8, and a wide encoding
# would let a DOCTYPE slip past the byte check above.
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")


class BankFileError(DomainError):
    """A bank file that is refused; ``message`` is one Dutch line for staff."""

    code = "bank_file_invalid"


def _doctype_refused() -> BankFileError:
    return BankFileError(
        _("Het bestand bevat een DOCTYPE of ENTITY en wordt om veiligheidsredenen geweigerd."),
        code="bank_file_doctype",
    )


def _parser(*, remove_blank_text: bool = False) -> etree.XMLParser:
    # A new parser per call: lxml parsers are not thread-safe to share.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        dtd_validation=False,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        remove_blank_text=remove_blank_text,
    )


def parse_untrusted_xml(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, remove_blank_text: bool = False
) -> etree._Element:
    """The root element of ``data``, or ``BankFileError`` if it is hostile or not XML.

    ``remove_blank_text`` drops whitespace-only text between elements (the
    indentation; a leaf keeps its text): a third less memory and time for a
    large file, for a reader that strips every text anyway.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("parse_untrusted_xml takes bytes, not text.")
    data = bytes(data)
    if len(data) > max_bytes:
        raise BankFileError(
            _("Het bestand is te groot (%(size)s bytes; maximaal %(max)s bytes).")
            % {"size": len(data), "max": max_bytes},
            code="bank_file_too_large",
        )
    # Not ``data.strip()``: that copies the whole file to find one character.
    if not data or data.isspace():
        raise BankFileError(_("Het bestand is leeg."), code="bank_file_empty")
    if data.startswith(_WIDE_BOMS) or b"\x00" in data:
        raise BankFileError(
            _("Het bestand is geen XML in UTF-8 en wordt geweigerd."), code="bank_file_encoding"
        )
    if _DOCTYPE.search(data):
        raise _doctype_refused()
    try:
        root = etree.fromstring(data, parser=_parser(remove_blank_text=remove_blank_text))
    except etree.XMLSyntaxError as exc:
        line = getattr(exc, "lineno", None) or "?"
        raise BankFileError(
            _("Het bestand is geen geldige XML (fout op regel %(line)s).") % {"line": line},
            code="bank_file_malformed",
        ) from None
    if root is None:
        raise BankFileError(_("Het bestand is geen geldige XML."), code="bank_file_malformed")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _doctype_refused()
    # With resolve_entities=False an entity reference stays in the tree as a
    # node; there can be none without a DOCTYPE, but refuse rather than trust.
    if any(True for _node in root.iter(etree.Entity)):
        raise _doctype_refused()
    return root
