from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .navigation import AREAS
from .tenancy import get_access, get_accesses


def portal(request):
    """The layout's data: active organisation, the switcher, the navigation."""
    site = {"SUPPORT_EMAIL": settings.SUPPORT_EMAIL}
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or request.path.startswith("/admin/"):
        return site
    access = get_access(request)
    nav = [("dashboard", _("Dashboard"), reverse("portal:dashboard"))]
    for slug, area in AREAS.items():
        nav.append((slug, area.label, reverse(f"portal:{slug}")))
        if slug == "licentie" and access is not None and access.organisation.is_accountancy_firm:
            nav.append(("administrations", _("Administraties"), reverse("portal:administrations")))
    nav.append(("contacts", _("Persoonlijke gegevens"), reverse("portal:contacts")))
    return {
        **site,
        "access": access,
        "accesses": get_accesses(request),
        "nav_items": nav,
    }
