"""Staff screens for terms and conditions versions (R20, §1.2).

A version is drafted here and published with the "Publiceren" action, which
calls the service (it moves live agreements and sends the newsletter for a
major change). A published version is read-only: customers have read and
accepted exactly that text.

The R20 warning ("at least twice a year") shows on the version list (as a
message) and on the admin index. For the index, ``admin.site.index`` is
wrapped below to add ``terms_publication_warning`` to its context, which
templates/admin/index.html shows above the app list; no context processor runs
the query on every page.
"""

from django.contrib import admin, messages
from django.db.models import Count
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from afas_sb import clock
from afas_sb.errors import DomainError

from ..models import TermsAcceptance, TermsSuggestion, TermsVersion
from ..services.terms import terms_publication_warning, terms_publish


class PublishedFilter(admin.SimpleListFilter):
    title = _("gepubliceerd")
    parameter_name = "published"

    def lookups(self, request, model_admin):
        return [("yes", _("Gepubliceerd")), ("no", _("Concept"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(published_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(published_at__isnull=True)
        return queryset


@admin.register(TermsVersion)
class TermsVersionAdmin(admin.ModelAdmin):
    list_display = (
        "number",
        "effective_date",
        "is_major",
        "published_at",
        "acceptance_count",
    )
    list_filter = ("is_major", PublishedFilter)
    search_fields = ("number", "summary")
    date_hierarchy = "effective_date"
    actions = ["publish"]
    fields = (
        "number",
        "effective_date",
        "is_major",
        "summary",
        "full_text",
        "published_at",
        "created_at",
    )
    readonly_fields = ("published_at", "created_at")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(acceptances_total=Count("acceptances"))

    @admin.display(description=_("acceptaties"), ordering="acceptances_total")
    def acceptance_count(self, obj):
        return obj.acceptances_total

    def get_readonly_fields(self, request, obj=None):
        # Customers have read and accepted a published text: it never changes.
        if obj is not None and obj.published_at is not None:
            return self.fields
        return self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.published_at is not None:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Deleting in bulk would bypass the per-object check above.
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=_("Publiceren"), permissions=["change"])
    def publish(self, request, queryset):
        published = 0
        # Oldest first, so a batch publishes in the order "newest" is decided.
        for version in queryset.order_by("effective_date", "pk"):
            if version.published_at is not None:
                continue
            try:
                terms_publish(version=version, staff_user=request.user)
            except DomainError as exc:
                self.message_user(request, f"{version.number}: {exc.message}", messages.ERROR)
            else:
                published += 1
        if published:
            self.message_user(
                request,
                ngettext(
                    "%(count)s versie gepubliceerd.",
                    "%(count)s versies gepubliceerd.",
                    published,
                )
                % {"count": published},
                messages.SUCCESS,
            )

    def changelist_view(self, request, extra_context=None):
        if request.method == "GET":
            warning = terms_publication_warning(clock.today())
            if warning:
                self.message_user(request, warning, messages.WARNING)
        return super().changelist_view(request, extra_context)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows customers create in the portal: staff read them, never edit them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TermsSuggestion)
class TermsSuggestionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "organisation", "terms_version", "user", "short_text")
    list_filter = ("terms_version",)
    search_fields = ("text", "organisation__legal_name", "user__email")
    list_select_related = ("organisation", "terms_version", "user")
    date_hierarchy = "created_at"
    fields = ("organisation", "terms_version", "user", "created_at", "text")

    @admin.display(description=_("verbetervoorstel"))
    def short_text(self, obj):
        return obj.text if len(obj.text) <= 80 else f"{obj.text[:80]}…"


@admin.register(TermsAcceptance)
class TermsAcceptanceAdmin(ReadOnlyAdmin):
    list_display = ("accepted_at", "organisation", "terms_version", "user")
    list_filter = ("terms_version",)
    search_fields = ("organisation__legal_name", "user__email")
    list_select_related = ("organisation", "terms_version", "user")
    date_hierarchy = "accepted_at"


def _index_with_terms_warning(index):
    def wrapped(request, extra_context=None):
        context = {
            "terms_publication_warning": terms_publication_warning(clock.today()),
            **(extra_context or {}),
        }
        return index(request, context)

    wrapped.terms_warning = True
    return wrapped


# Wrapped once, before admin.site.urls is built (the admin is autodiscovered first).
if not getattr(admin.site.index, "terms_warning", False):
    admin.site.index = _index_with_terms_warning(admin.site.index)
