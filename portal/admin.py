from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from afas_sb import clock
from afas_sb.errors import DomainError
from licensing.admin.organisations import OrganisationAdmin

from . import services
from .models import Invitation, Membership


class MembershipInline(admin.TabularInline):
    """The people of an organisation, on its admin page (changes go through the portal)."""

    model = Membership
    fields = ("user", "email", "role", "is_subscription_contact", "is_breach_contact", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = _("personen met toegang")

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("e-mailadres"))
    def email(self, membership):
        return membership.user.email

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


OrganisationAdmin.inlines = [*OrganisationAdmin.inlines, MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "organisation",
        "role",
        "is_subscription_contact",
        "is_breach_contact",
        "created_at",
    )
    list_filter = ("role", "is_subscription_contact", "is_breach_contact", "organisation__kind")
    search_fields = ("user__email", "user__full_name", "organisation__legal_name")
    autocomplete_fields = ("user", "organisation")
    list_select_related = ("user", "organisation")


class InvitationStateFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            ("open", _("Openstaand")),
            ("expired", _("Verlopen")),
            ("accepted", _("Geaccepteerd")),
            ("revoked", _("Ingetrokken")),
        ]

    def queryset(self, request, queryset):
        now = clock.now()
        unfinished = queryset.filter(accepted_at__isnull=True, revoked_at__isnull=True)
        return {
            "open": unfinished.filter(expires_at__gt=now),
            "expired": unfinished.filter(expires_at__lte=now),
            "accepted": queryset.filter(accepted_at__isnull=False),
            "revoked": queryset.filter(revoked_at__isnull=False),
        }.get(self.value(), queryset)


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = (
        "email",
        "organisation",
        "role",
        "created_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
    )
    list_filter = (InvitationStateFilter, "role")
    search_fields = ("email", "organisation__legal_name")
    list_select_related = ("organisation",)
    readonly_fields = [f.name for f in Invitation._meta.fields if f.name != "token_hash"]
    exclude = ("token_hash",)

    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Uitnodigingen intrekken"))
    def revoke(self, request, queryset):
        revoked = 0
        for invitation in queryset:
            try:
                services.invitation_revoke(invitation=invitation, actor=request.user)
                revoked += 1
            except DomainError as exc:
                self.message_user(request, f"{invitation.email}: {exc.message}", messages.WARNING)
        self.message_user(
            request,
            ngettext("%(n)d uitnodiging ingetrokken.", "%(n)d uitnodigingen ingetrokken.", revoked)
            % {"n": revoked},
            messages.SUCCESS,
        )
