from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from ..models import NumberSeries
from ..services.numbering import NUMBER_DIGITS
from .common import ReadOnlyAdmin


@admin.register(NumberSeries)
class NumberSeriesAdmin(ReadOnlyAdmin):
    """The counters of the gapless series (R9): shown, never edited by hand."""

    list_display = ("key", "prefix", "last_number", "last_issued")
    search_fields = ("key",)
    readonly_fields = ("key", "prefix", "last_number", "last_issued")

    @admin.display(description=_("laatst uitgegeven nummer"))
    def last_issued(self, obj):
        if not obj.last_number:
            return "—"
        return f"{obj.prefix}{obj.last_number:0{NUMBER_DIGITS}d}"
