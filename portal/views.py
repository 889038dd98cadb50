from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from afas_sb import clock
from afas_sb.calendars import month_period
from afas_sb.errors import DomainError
from billing.collection_selectors import open_amount_with_payments
from licensing.models import Organisation
from licensing.selectors import firm_clients, licence_price, live_agreement
from licensing.services.terms import terms_pending_for

from . import navigation, services
from .forms import (
    AcceptInvitationForm,
    InvitationForm,
    MembershipForm,
    OrganisationDetailsForm,
    SwitchOrganisationForm,
)
from .models import Invitation, Membership
from .tenancy import access_for, get_access, get_scoped_or_404, scoped, set_active_organisation


def portal_view(permission: str = "view", *, after_end: bool = False):
    """Log-in required, an active organisation, and the role's permission.

    The view receives ``access`` (tenancy.Access) for the active organisation.
    Once the organisation's licence has ended (R16) only views marked
    ``after_end=True`` still open; every other one shows the "terminated" page.
    """

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            access = get_access(request)
            if access is None:
                return render(request, "portal/no_organisation.html", status=403)
            if not after_end and not access.organisation.is_active:
                return _terminated(request, access)
            if not access.can(permission):
                return render(request, "portal/forbidden.html", {"access": access}, status=403)
            return view(request, access, *args, **kwargs)

        return wrapped

    return decorator


@portal_view()
def dashboard(request, access):
    organisation = access.organisation
    clients = firm_clients(firm=organisation) if organisation.is_accountancy_firm else None
    contacts = scoped(request, Membership.objects.select_related("user")).filter(
        is_subscription_contact=True
    )
    agreement = live_agreement(organisation=organisation)
    price = (
        licence_price(agreement=agreement, period_start=month_period(clock.today()).start)
        if agreement is not None
        else None
    )
    return render(
        request,
        "portal/dashboard.html",
        {
            "organisation": organisation,
            "clients": clients,
            "subscription_contacts": contacts,
            "agreement": agreement,
            "price": price,
            "open_amount": open_amount_with_payments(organisation),
            "terms_pending": terms_pending_for(organisation=organisation),
            "terms_can_accept": access.can("accept_terms"),
        },
    )


@require_POST
@login_required
def switch_organisation(request):
    form = SwitchOrganisationForm(request.POST)
    access = access_for(request, form.cleaned_data["organisation"]) if form.is_valid() else None
    if access is None:
        return render(request, "404.html", status=404)
    set_active_organisation(request, access)
    messages.success(
        request, _("Je werkt nu voor %(name)s.") % {"name": access.organisation.legal_name}
    )
    target = request.POST.get("next") or reverse("portal:dashboard")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = reverse("portal:dashboard")
    return redirect(target)


# --- Persoonlijke gegevens / Contactpersonen -------------------------------------------


@portal_view(after_end=True)
def contacts(request, access):
    return _contacts_page(request, access)


def _contacts_page(request, access, invite_form=None):
    members = scoped(request, Membership.objects.select_related("user")).order_by(
        "user__full_name", "user__email"
    )
    invitations = (
        scoped(request, Invitation.objects.select_related("invited_by")).filter(
            accepted_at__isnull=True, revoked_at__isnull=True
        )
        if access.can("manage_people")
        else Invitation.objects.none()
    )
    return render(
        request,
        "portal/contacts.html",
        {
            "organisation": access.organisation,
            "members": members,
            "invitations": invitations,
            "invite_form": invite_form or InvitationForm(),
            # Read-only once the licence has ended (R16).
            "can_manage": access.can("manage_people") and access.organisation.is_active,
            "can_edit_organisation": access.can("manage_organisation")
            and access.organisation.is_active,
        },
    )


@portal_view("manage_people")
def invitation_create(request, access):
    if request.method != "POST":
        return redirect("portal:contacts")
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            invitation = services.invitation_create(
                organisation=access.organisation, invited_by=request.user, **form.cleaned_data
            )
        except DomainError as exc:
            form.add_error("email", exc.message)
        else:
            messages.success(
                request,
                _("Uitnodiging verstuurd naar %(email)s. De link is %(days)s dagen geldig.")
                % {"email": invitation.email, "days": settings.INVITATION_VALID_DAYS},
            )
            return redirect("portal:contacts")
    return _contacts_page(request, access, invite_form=form)


@require_POST
@portal_view("manage_people")
def invitation_resend(request, access, pk):
    invitation = get_scoped_or_404(request, Invitation, pk=pk)
    return _run(
        request,
        lambda: services.invitation_resend(invitation=invitation, actor=request.user),
        _("Uitnodiging opnieuw verstuurd naar %(email)s.") % {"email": invitation.email},
    )


@require_POST
@portal_view("manage_people")
def invitation_revoke(request, access, pk):
    invitation = get_scoped_or_404(request, Invitation, pk=pk)
    return _run(
        request,
        lambda: services.invitation_revoke(invitation=invitation, actor=request.user),
        _("Uitnodiging voor %(email)s ingetrokken.") % {"email": invitation.email},
    )


@portal_view("manage_people")
def membership_edit(request, access, pk):
    membership = get_scoped_or_404(request, Membership.objects.select_related("user"), pk=pk)
    form = MembershipForm(request.POST or None, instance=membership)
    if request.method == "POST" and form.is_valid():
        try:
            services.membership_update(
                membership=membership, actor=request.user, **form.cleaned_data
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request,
                _("De gegevens van %(name)s zijn opgeslagen.")
                % {"name": membership.user.get_full_name()},
            )
            return redirect("portal:contacts")
    return render(request, "portal/membership_edit.html", {"form": form, "membership": membership})


@require_POST
@portal_view("manage_people")
def membership_remove(request, access, pk):
    membership = get_scoped_or_404(request, Membership.objects.select_related("user"), pk=pk)
    return _run(
        request,
        lambda: services.membership_remove(membership=membership, actor=request.user),
        _("%(name)s heeft geen toegang meer tot %(organisation)s.")
        % {"name": membership.user.get_full_name(), "organisation": access.organisation},
    )


@portal_view("manage_organisation")
def organisation_edit(request, access):
    # A fresh copy: the form normalises its instance in place while validating.
    instance = Organisation.objects.get(pk=access.organisation.pk)
    form = OrganisationDetailsForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        changes = {field: getattr(instance, field) for field in form.changed_data}
        services.organisation_update_details(
            organisation=access.organisation, changes=changes, actor=request.user
        )
        messages.success(request, _("De organisatiegegevens zijn opgeslagen."))
        return redirect("portal:contacts")
    return render(
        request,
        "portal/organisation_edit.html",
        {"form": form, "organisation": access.organisation},
    )


# --- Invitation links (no organisation needed yet) -----------------------------------------


def invitation_accept(request, token):
    try:
        invitation = services.invitation_for_token(token)
    except DomainError as exc:
        return render(
            request,
            "portal/invitation_problem.html",
            {"message": exc.message},
            status=exc.status if exc.status == 404 else 410,
        )

    if request.user.is_authenticated:
        if request.method == "POST":
            try:
                membership = services.invitation_accept(token=token, user=request.user)
            except DomainError as exc:
                return render(
                    request,
                    "portal/invitation_problem.html",
                    {"message": exc.message},
                    status=exc.status,
                )
            access = access_for(request, membership.organisation_id)
            if access is not None:
                set_active_organisation(request, access)
            messages.success(
                request,
                _("Welkom bij %(organisation)s.") % {"organisation": invitation.organisation},
            )
            return redirect("portal:dashboard")
        return render(request, "portal/invitation_accept.html", {"invitation": invitation})

    if services.User.objects.filter(email__iexact=invitation.email).exists():
        login_url = f"{reverse('account_login')}?next={request.path}"
        return render(
            request,
            "portal/invitation_accept.html",
            {"invitation": invitation, "login_url": login_url, "needs_login": True},
        )

    form = AcceptInvitationForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.invitation_accept_as_new_user(
                token=token,
                full_name=form.cleaned_data["full_name"],
                password=form.cleaned_data["password1"],
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            login(request, user, backend="allauth.account.auth_backends.AuthenticationBackend")
            messages.success(
                request,
                _("Je account is aangemaakt. Welkom bij %(organisation)s.")
                % {"organisation": invitation.organisation},
            )
            return redirect("portal:dashboard")
    return render(
        request, "portal/invitation_signup.html", {"invitation": invitation, "form": form}
    )


# --- Areas that later releases fill ---------------------------------------------------------

# Areas a customer still reaches after the licence ended (R16, §3.6.3).
AFTER_END_AREAS = {"facturen", "privacy", "voorwaarden"}


@portal_view(after_end=True)
def area(request, access, slug):
    if slug not in AFTER_END_AREAS and not access.organisation.is_active:
        return _terminated(request, access)
    return render(
        request,
        "portal/area.html",
        {"area": navigation.AREAS[slug], "organisation": access.organisation},
    )


def _terminated(request, access):
    # Imported here: termination_views uses portal_view from this module.
    from .termination_views import terminated_page

    return terminated_page(request, access)


def _run(request, action, success_message):
    try:
        action()
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, success_message)
    return redirect("portal:contacts")
