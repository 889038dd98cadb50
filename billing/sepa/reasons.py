"""SEPA R-transaction reason codes and what each one makes us do (R12).

The EPC's reason codes for returns, rejects and refunds of Core direct debits
(ISO 20022 ExternalStatusReason1Code / ExternalReturnReason1Code). Each code
falls in one path:

- RETRY: re-present, up to ``SEPA_MAX_REPRESENTMENTS`` re-attempts (AM04:
  insufficient funds).
- RETRY_ONCE: re-present at most once (MS03: reason not specified).
- NO_RETRY: refunded or refused by the debtor (MD06, MS02): never retried
  automatically; the customer is asked to pay by transfer.
- INVALIDATE: the account or the mandate cannot be used (AC01, AC04, AC06,
  AG01, MD01, MD07, SL01): the mandate becomes invalid and is never used again.
- Any other code is not retried (the safe choice: every return costs a fee).
"""

from __future__ import annotations

from enum import StrEnum

from django.utils.translation import gettext_lazy as _


class ReturnPath(StrEnum):
    RETRY = "retry"
    RETRY_ONCE = "retry_once"
    NO_RETRY = "no_retry"
    INVALIDATE = "invalidate"


PATHS: dict[str, ReturnPath] = {
    "AM04": ReturnPath.RETRY,
    "MS03": ReturnPath.RETRY_ONCE,
    "MD06": ReturnPath.NO_RETRY,
    "MS02": ReturnPath.NO_RETRY,
    "AC01": ReturnPath.INVALIDATE,
    "AC04": ReturnPath.INVALIDATE,
    "AC06": ReturnPath.INVALIDATE,
    "AG01": ReturnPath.INVALIDATE,
    "MD01": ReturnPath.INVALIDATE,
    "MD07": ReturnPath.INVALIDATE,
    "SL01": ReturnPath.INVALIDATE,
}

# What the customer and staff read next to the code.
DESCRIPTIONS = {
    "AC01": _("Rekeningnummer onjuist"),
    "AC04": _("Rekening opgeheven"),
    "AC06": _("Rekening geblokkeerd"),
    "AC13": _("Rekening van een consument"),
    "AG01": _("Incasso niet toegestaan op deze rekening"),
    "AG02": _("Ongeldige transactiecode"),
    "AM04": _("Onvoldoende saldo"),
    "AM05": _("Dubbele incasso"),
    "BE05": _("Incassant onbekend"),
    "CNOR": _("Bank van de incassant onbekend"),
    "DNOR": _("Bank van de betaler onbekend"),
    "FF01": _("Ongeldig bestandsformaat"),
    "MD01": _("Geen machtiging"),
    "MD02": _("Machtigingsgegevens onjuist of onvolledig"),
    "MD06": _("Terugboeking op verzoek van de betaler"),
    "MD07": _("Rekeninghouder overleden"),
    "MS02": _("Geweigerd door de betaler"),
    "MS03": _("Reden niet opgegeven"),
    "RC01": _("BIC onjuist"),
    "RR01": _("Gegevens betaler ontbreken (regelgeving)"),
    "RR02": _("Naam of adres betaler ontbreekt (regelgeving)"),
    "RR03": _("Naam of adres incassant ontbreekt (regelgeving)"),
    "RR04": _("Regelgeving"),
    "SL01": _("Specifieke dienst van de bank van de betaler"),
}


def return_path(code: str | None) -> ReturnPath:
    return PATHS.get((code or "").strip().upper(), ReturnPath.NO_RETRY)


def describe(code: str | None) -> str:
    """'AM04 – Onvoldoende saldo', or the bare code when it is not in the list."""
    code = (code or "").strip().upper()
    if not code:
        return ""
    description = DESCRIPTIONS.get(code)
    return f"{code} – {description}" if description else code
