"""Tenant isolation: which organisations a person may act for, and scoping to one.

Every portal and API query for customer data goes through ``scoped()`` (or
``get_scoped_or_404()``), which filters on the model's ``TENANT_FIELD`` with
the request's active organisation. An object of another organisation is
therefore simply not found (404), never forbidden (403), so its existence
does not leak either.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Model, QuerySet
from django.http import Http404

from licensing.models import Organisation

from .models import Membership, Role

SESSION_KEY = "active_organisation_id"

# What each role may do. Access through an accountancy firm is read-only.
PERMISSIONS: dict[str, set[str]] = {
    "view": {Role.ADMIN, Role.BILLING, Role.MEMBER, Role.VIEWER},
    "manage_people": {Role.ADMIN},
    "manage_organisation": {Role.ADMIN},
    "manage_billing": {Role.ADMIN, Role.BILLING},
    # Client administrations of an accountancy firm (R2, R17): day-to-day work.
    "manage_administrations": {Role.ADMIN, Role.MEMBER},
    # Terms (R20): a beheerder accepts for the organisation; anyone but a viewer suggests.
    "accept_terms": {Role.ADMIN},
    "suggest_terms": {Role.ADMIN, Role.BILLING, Role.MEMBER},
}


@dataclass(frozen=True)
class Access:
    """A person's standing in one organisation."""

    organisation: Organisation
    role: str
    membership: Membership | None = None
    via_firm: Organisation | None = None  # set when access comes from the client's firm

    def can(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]

    @property
    def role_label(self) -> str:
        return Role(self.role).label


def accesses_for(user) -> list[Access]:
    """Every organisation the user may act for: own memberships, then firms' clients.

    Two queries, whatever the number of organisations.
    """
    if not user.is_authenticated:
        return []
    memberships = list(
        Membership.objects.filter(user=user)
        .select_related("organisation")
        .order_by("organisation__legal_name")
    )
    accesses = [Access(m.organisation, m.role, membership=m) for m in memberships]
    direct_ids = {m.organisation_id for m in memberships}
    firm_ids = [m.organisation_id for m in memberships if m.organisation.is_accountancy_firm]
    if firm_ids:
        clients = (
            Organisation.objects.filter(accountancy_firm_id__in=firm_ids)
            .exclude(id__in=direct_ids)
            .select_related("accountancy_firm")
            .order_by("legal_name")
        )
        accesses += [Access(c, Role.VIEWER, via_firm=c.accountancy_firm) for c in clients]
    return accesses


def access_for(request, organisation_id: int | None) -> Access | None:
    for access in get_accesses(request):
        if access.organisation.pk == organisation_id:
            return access
    return None


_UNSET = object()


def get_access(request) -> Access | None:
    """The organisation the request acts for (cached on the request)."""
    cached = getattr(request, "_portal_access", _UNSET)
    if cached is _UNSET:
        cached = _active_access(request)
        request._portal_access = cached
    return cached


def set_active_organisation(request, access: Access) -> None:
    request.session[SESSION_KEY] = access.organisation.pk
    request._portal_access = access


def get_accesses(request) -> list[Access]:
    """All organisations of the request's user (cached on the request), for the switcher."""
    if not hasattr(request, "_portal_accesses"):
        request._portal_accesses = accesses_for(request.user)
    return request._portal_accesses


def _active_access(request) -> Access | None:
    """The session's chosen organisation if the user may still act for it, else the first."""
    accesses = get_accesses(request)
    if not accesses:
        return None
    chosen = request.session.get(SESSION_KEY)
    for access in accesses:
        if access.organisation.pk == chosen:
            return access
    return accesses[0]


def scoped(request, queryset: QuerySet | type[Model], *, field: str | None = None) -> QuerySet:
    """The queryset restricted to the active organisation; empty without one.

    ``field`` names another path to the organisation than the model's
    TENANT_FIELD, e.g. ``invoice_to`` for the agreements a firm pays for.
    """
    if isinstance(queryset, type):
        queryset = queryset._default_manager.all()
    field = field or queryset.model.TENANT_FIELD
    access = get_access(request)
    if access is None:
        return queryset.none()
    return queryset.filter(**{field: access.organisation})


def get_scoped_or_404(request, queryset: QuerySet | type[Model], **lookups):
    """One object of the active organisation, or 404 (also for other tenants' objects)."""
    queryset = scoped(request, queryset)
    try:
        return queryset.get(**lookups)
    except queryset.model.DoesNotExist:
        raise Http404 from None
