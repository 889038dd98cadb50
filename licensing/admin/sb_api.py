"""Staff screens for the SB application's API: service tokens and the counts it pushed."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..models import CountEvent, ServiceToken
from ..services.tokens import service_token_revoke


class RevokedFilter(admin.SimpleListFilter):
    title = _("ingetrokken")
    parameter_name = "revoked"

    def lookups(self, request, model_admin):
        return [("no", _("Nee, in gebruik")), ("yes", _("Ja, ingetrokken"))]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ServiceToken)
class ServiceTokenAdmin(admin.ModelAdmin):
    """Tokens are made with `manage.py create_service_token` (shown once); staff revoke them here.

    The hash is never shown: it is not secret enough to display casually and
    of no use to anyone reading the screen.
    """

    list_display = ("name", "environment", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("environment", RevokedFilter)
    search_fields = ("name", "prefix")
    fields = (
        "name",
        "environment",
        "prefix",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
    )
    readonly_fields = (
        "environment",
        "prefix",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
    )
    list_select_related = ("created_by",)
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        # Counts point at their token; revoking keeps that history intact.
        return False

    @admin.action(description=_("Intrekken"), permissions=["change"])
    def revoke(self, request, queryset):
        revoked = 0
        for token in queryset.order_by("pk"):
            if service_token_revoke(token=token, actor=request.user):
                revoked += 1
        self.message_user(
            request,
            ngettext("%(n)d servicetoken ingetrokken.", "%(n)d servicetokens ingetrokken.", revoked)
            % {"n": revoked},
            messages.SUCCESS,
        )


@admin.register(CountEvent)
class CountEventAdmin(admin.ModelAdmin):
    """What the SB application pushed and what it was answered: read-only history (R3)."""

    list_display = ("event_id", "agreement_number", "token", "received_at", "changes_count")
    list_filter = ("received_at", "token__environment")
    search_fields = ("event_id", "agreement__number")
    date_hierarchy = "received_at"
    list_select_related = ("agreement", "token")
    fields = (
        "event_id",
        "agreement",
        "token",
        "received_at",
        "payload",
        "response_body",
        "changes_summary",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("overeenkomst"), ordering="agreement__number")
    def agreement_number(self, event):
        return event.agreement.number

    @admin.display(description=_("wijzigingen"))
    def changes_count(self, event):
        return len(event.response_body.get("changes", [])) if event.response_body else 0

    @admin.display(description=_("wijzigingen"))
    def changes_summary(self, event):
        changes = event.changes.select_related("component").order_by("component__position")
        return "; ".join(str(change) for change in changes) or _("Geen: aantallen ongewijzigd.")
