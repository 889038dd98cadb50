"""pain.002 payment-information blocks refused as a whole, without transaction lines (R12).

A bank may refuse one ``PmtInf`` of a pain.008 (``OrgnlPmtInfAndSts/PmtInfSts``
RJCT) without listing its transactions, while the group status says something
else (PART, or nothing). ``parse_bank_file`` keeps statuses per transaction
only, so such a block yields no line there; this reads the blocks from the
file's bytes, with the same safe parser, for the import to reject every debit
of that batch.

It belongs in the parser's ``StatusReport`` (a list of payment-information
statuses next to the items); until it is there, this is the one place that
reads them. Only status reports that name ``PmtInfSts`` at all are parsed a
second time, and status reports are small next to statements.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from .safe_xml import parse_untrusted_xml


@dataclass(frozen=True)
class PaymentInformationReject:
    """One ``OrgnlPmtInfAndSts`` with status RJCT and no ``TxInfAndSts``."""

    id: str | None  # OrgnlPmtInfId: our batch's message id
    reason_code: str | None
    reason_info: str | None


def _local(el) -> str | None:
    return etree.QName(el).localname if isinstance(el.tag, str) else None


def _children(el, name: str) -> list:
    return [child for child in el if _local(child) == name]


def _text(el, *path: str) -> str | None:
    for name in path:
        found = _children(el, name)
        if not found:
            return None
        el = found[0]
    text = (el.text or "").strip()
    return text or None


def payment_information_rejects(data: bytes) -> list[PaymentInformationReject]:
    """The refused payment-information blocks without transaction lines of a pain.002."""
    if b"PmtInfSts" not in data:
        return []
    root = parse_untrusted_xml(data, max_bytes=len(data))
    rejects = []
    for block in root.iter(etree.Element):
        if _local(block) != "OrgnlPmtInfAndSts":
            continue
        status = (_text(block, "PmtInfSts") or "").upper()
        if status != "RJCT" or _children(block, "TxInfAndSts"):
            continue
        reason = _children(block, "StsRsnInf")
        code = info = None
        if reason:
            code = _text(reason[0], "Rsn", "Cd") or _text(reason[0], "Rsn", "Prtry")
            extra = [(el.text or "").strip() for el in _children(reason[0], "AddtlInf")]
            info = " ".join(text for text in extra if text) or None
        rejects.append(
            PaymentInformationReject(
                id=_text(block, "OrgnlPmtInfId"), reason_code=code, reason_info=info
            )
        )
    return rejects
