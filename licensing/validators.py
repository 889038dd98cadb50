"""Validation of Dutch and Belgian identifiers with python-stdnum.

Each function returns the value in its stored (compact, canonical) form or
raises a ValidationError whose message a customer can act on.
"""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from stdnum.be import vat as be_vat
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.nl import btw as nl_btw
from stdnum.nl import postcode as nl_postcode

NL = "NL"
BE = "BE"

_KVK = re.compile(r"^\d{8}$")


def clean_registration_number(country: str, value: str) -> str:
    """KvK number (NL, 8 digits) or Belgian enterprise number (KBO/BCE, 10 digits)."""
    raw = re.sub(r"[\s.\-]", "", value or "")
    if country == NL:
        if not _KVK.match(raw):
            raise ValidationError(
                _("Een KvK-nummer bestaat uit 8 cijfers, bijvoorbeeld 12345678."),
                code="invalid_kvk",
            )
        return raw
    if country == BE:
        raw = raw.upper().removeprefix("BE")
        try:
            return be_vat.validate(raw)
        except StdnumError:
            raise ValidationError(
                _(
                    "Dit is geen geldig Belgisch ondernemingsnummer (10 cijfers, bijv. 0403.170.701)."
                ),
                code="invalid_enterprise_number",
            ) from None
    raise ValidationError(_("Kies Nederland of België als land."), code="invalid_country")


def clean_vat_id(country: str, value: str) -> str:
    """A VAT id of the organisation's own country, stored with its prefix (NL…B01, BE0…)."""
    raw = re.sub(r"[\s.\-]", "", value or "").upper()
    if country == NL:
        if raw and not raw.startswith(NL) and raw[:2].isalpha():
            raise ValidationError(
                _("Een Nederlandse organisatie heeft een btw-id dat met NL begint."),
                code="vat_country_mismatch",
            )
        try:
            return NL + nl_btw.validate(raw)
        except StdnumError:
            raise ValidationError(
                _("Dit is geen geldig Nederlands btw-identificatienummer (bijv. NL004495445B01)."),
                code="invalid_vat",
            ) from None
    if country == BE:
        if raw and not raw.startswith(BE) and raw[:2].isalpha():
            raise ValidationError(
                _("Een Belgische organisatie heeft een btw-nummer dat met BE begint."),
                code="vat_country_mismatch",
            )
        try:
            return BE + be_vat.validate(raw.removeprefix(BE))
        except StdnumError:
            raise ValidationError(
                _("Dit is geen geldig Belgisch btw-nummer (bijv. BE0403170701)."),
                code="invalid_vat",
            ) from None
    raise ValidationError(_("Kies Nederland of België als land."), code="invalid_country")


def clean_postcode(country: str, value: str) -> str:
    raw = (value or "").strip().upper()
    if country == NL:
        try:
            return nl_postcode.validate(raw)
        except StdnumError:
            raise ValidationError(
                _("Een Nederlandse postcode heeft 4 cijfers en 2 letters, bijv. 1234 AB."),
                code="invalid_postcode",
            ) from None
    if country == BE:
        if not re.fullmatch(r"[1-9]\d{3}", raw):
            raise ValidationError(
                _("Een Belgische postcode bestaat uit 4 cijfers, bijv. 2000."),
                code="invalid_postcode",
            )
        return raw
    raise ValidationError(_("Kies Nederland of België als land."), code="invalid_country")


def clean_peppol_endpoint(scheme: str, value: str) -> str:
    """The Peppol participant id for a scheme (ISO 6523 ICD), in canonical form."""
    raw = re.sub(r"[\s.\-]", "", value or "").upper()
    try:
        if scheme == "0106":
            return clean_registration_number(NL, raw)
        if scheme == "0208":
            return clean_registration_number(BE, raw)
        if scheme == "9944":
            return clean_vat_id(NL, raw)
        if scheme == "9925":
            return clean_vat_id(BE, raw)
        if scheme == "0190":
            if not re.fullmatch(r"\d{20}", raw):
                raise ValidationError(_("Een OIN bestaat uit 20 cijfers."), code="invalid_oin")
            return raw
    except ValidationError as exc:
        raise ValidationError(
            _("Het Peppol-id past niet bij het gekozen schema: %(reason)s")
            % {"reason": " ".join(exc.messages)},
            code="invalid_peppol_id",
        ) from None
    raise ValidationError(_("Onbekend Peppol-schema."), code="invalid_peppol_scheme")
