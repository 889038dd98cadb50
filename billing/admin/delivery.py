"""Invoice deliveries (R10): their state per invoice, and a staff action to send again."""

from django.contrib import admin, messages
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from afas_sb.errors import DomainError
from billing.models import InvoiceDelivery
from billing.services.delivery import delivery_resend

from .common import ReadOnlyAdmin


@admin.register(InvoiceDelivery)
class InvoiceDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "invoice",
        "channel",
        "recipient",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "short_error",
    ]
    list_filter = ["status", "channel"]
    search_fields = ["invoice__number", "recipient"]
    list_select_related = ["invoice"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "invoice",
        "channel",
        "recipient",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "external_id",
        "last_error",
        "created_at",
        "updated_at",
    ]
    fields = readonly_fields
    actions = ["resend"]

    @admin.display(description=gettext_lazy("laatste fout"))
    def short_error(self, obj):
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error or "—"

    def has_resend_permission(self, request):
        return request.user.has_perm("billing.change_invoicedelivery")

    @admin.action(description=gettext_lazy("Opnieuw versturen"), permissions=["resend"])
    def resend(self, request, queryset):
        done = 0
        for delivery in queryset.select_related("invoice").order_by("pk"):
            try:
                delivery_resend(delivery=delivery, staff_user=request.user)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                continue
            done += 1
        if done:
            self.message_user(
                request,
                ngettext(
                    "%(count)d factuur wordt opnieuw verstuurd.",
                    "%(count)d facturen worden opnieuw verstuurd.",
                    done,
                )
                % {"count": done},
                messages.SUCCESS,
            )
        elif not queryset.exists():
            self.message_user(request, _("Niets geselecteerd."), messages.WARNING)
