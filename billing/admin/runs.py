"""Billing runs: progress per run (done/total chunks, invoices, failures) and retrying."""

from django.contrib import admin, messages
from django.db.models import Case, Value, When
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from afas_sb import clock
from afas_sb.errors import DomainError

from ..models import BillingChunk, BillingRun
from ..services.runs import billing_run_start
from .common import ReadOnlyAdmin, ReadOnlyInline

ERROR_PREVIEW_CHARS = 2000


class BillingChunkInline(ReadOnlyInline):
    model = BillingChunk
    # The chunk model's fields carry no labels; these say in Dutch what they are.
    fields = readonly_fields = (
        "chunk_number",
        "status",
        "agreement_count",
        "invoices",
        "attempt_count",
        "finished",
        "error_text",
    )
    verbose_name_plural = gettext_lazy("delen (mislukte eerst)")

    def get_queryset(self, request):
        # Failed chunks first: they are what staff open the run for.
        return (
            super()
            .get_queryset(request)
            .annotate(
                failed_first=Case(
                    When(status=BillingChunk.Status.FAILED, then=Value(0)), default=Value(1)
                )
            )
            .order_by("failed_first", "number")
        )

    @admin.display(description=gettext_lazy("deel"))
    def chunk_number(self, obj):
        return obj.number

    @admin.display(description=gettext_lazy("overeenkomsten"))
    def agreement_count(self, obj):
        return len(obj.agreement_ids)

    @admin.display(description=gettext_lazy("facturen"))
    def invoices(self, obj):
        return obj.invoices_created

    @admin.display(description=gettext_lazy("pogingen"))
    def attempt_count(self, obj):
        return obj.attempts

    @admin.display(description=gettext_lazy("klaar op"))
    def finished(self, obj):
        if obj.finished_at is None:
            return "—"
        return date_format(clock.local(obj.finished_at), "j F Y H:i:s")

    @admin.display(description=gettext_lazy("foutmelding"))
    def error_text(self, obj):
        if not obj.error:
            return "—"
        return format_html("<pre>{}</pre>", obj.error[:ERROR_PREVIEW_CHARS])


@admin.register(BillingRun)
class BillingRunAdmin(ReadOnlyAdmin):
    """One run per month (R7); its chunks are invoiced by the workers in parallel."""

    list_display = (
        "__str__",
        "status",
        "progress",
        "invoices_created",
        "chunks_failed",
        "agreements_total",
        "started_at",
        "finished_at",
    )
    list_filter = ("status",)
    date_hierarchy = "period_start"
    fields = readonly_fields = (
        "period_start",
        "status",
        "progress",
        "agreements_total",
        "invoices_created",
        "chunks_total",
        "chunks_done",
        "chunks_failed",
        "started_at",
        "finished_at",
    )
    inlines = [BillingChunkInline]
    actions = ["retry_failed_chunks"]

    @admin.display(description=gettext_lazy("voortgang"))
    def progress(self, obj):
        if not obj.chunks_total:
            return _("geen delen")
        percent = 100 * obj.chunks_done // obj.chunks_total
        return _("%(done)s/%(total)s delen klaar (%(percent)s%%)") % {
            "done": obj.chunks_done,
            "total": obj.chunks_total,
            "percent": percent,
        }

    def has_retry_permission(self, request):
        return request.user.has_perm("billing.change_billingrun")

    @admin.action(
        description=gettext_lazy("Mislukte delen opnieuw proberen (en ontbrekende facturen maken)"),
        permissions=["retry"],
    )
    def retry_failed_chunks(self, request, queryset):
        """Start each run again: failed and pending chunks go back to the workers, gaps get chunks."""
        for run in queryset.order_by("period_start"):
            try:
                run = billing_run_start(period_start=run.period_start, actor=request.user)
            except DomainError as exc:
                self.message_user(request, f"{run}: {exc.message}", messages.ERROR)
                continue
            run.refresh_from_db()
            self.message_user(
                request,
                _(
                    "Facturatierun %(run)s opnieuw gestart: %(done)s/%(total)s delen klaar, "
                    "%(failed)s mislukt, %(invoices)s facturen."
                )
                % {
                    "run": run,
                    "done": run.chunks_done,
                    "total": run.chunks_total,
                    "failed": run.chunks_failed,
                    "invoices": run.invoices_created,
                },
                messages.WARNING if run.chunks_failed else messages.SUCCESS,
            )
