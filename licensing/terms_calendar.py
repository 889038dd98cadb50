"""The calendar action that puts a newly effective terms version into force (R20).

A version may be published ahead of its effective date (announced in the
portal and, for a major change, by newsletter). On the effective date this
action moves every live agreement to it. Publishing on or after the effective
date moves them at once (licensing.services.terms.terms_publish); running this
action again on the same day then finds nothing to do.

Imported from LicensingConfig.ready(), which registers it.
"""

from datetime import date

from afas_sb.scheduler.registry import register

from .selectors import current_terms_version
from .services.terms import terms_apply_versions


@register(
    "licensing.apply_terms_versions",
    order=50,
    description="Nieuwe versie van de voorwaarden laten gelden vanaf de ingangsdatum (R20)",
)
def apply_terms_versions(day: date) -> str:
    moved = terms_apply_versions(on=day)
    current = current_terms_version(on=day)
    if current is None:
        return "geen gepubliceerde voorwaarden"
    return f"{moved} overeenkomst(en) naar versie {current.number}"
