from django.contrib import admin, messages
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import services, tasks
from .models import CalendarDay, CalendarRun


@admin.register(CalendarRun)
class CalendarRunAdmin(admin.ModelAdmin):
    list_display = ("date", "action", "status", "attempts", "outcome", "finished_at")
    list_filter = ("status", "action")
    search_fields = ("action", "outcome", "error")
    date_hierarchy = "date"
    ordering = ("-date", "action")
    readonly_fields = [f.name for f in CalendarRun._meta.fields]
    actions = ["retry"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Mislukte runs opnieuw proberen"))
    def retry(self, request, queryset):
        with transaction.atomic():
            count = services.calendar_run_retry(runs=list(queryset))
            transaction.on_commit(tasks.calendar_tick.delay)
        self.message_user(
            request,
            ngettext(
                "%(count)d run staat klaar om opnieuw te draaien.",
                "%(count)d runs staan klaar om opnieuw te draaien.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )


@admin.register(CalendarDay)
class CalendarDayAdmin(admin.ModelAdmin):
    list_display = ("date", "completed_at", "created_at")
    list_filter = (("completed_at", admin.EmptyFieldListFilter),)
    date_hierarchy = "date"
    readonly_fields = ("date", "completed_at", "created_at")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
