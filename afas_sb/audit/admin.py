from django.contrib import admin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "action",
        "actor_kind",
        "actor_user",
        "organisation_id",
        "object_type",
        "object_id",
    )
    list_filter = ("actor_kind", "action")
    search_fields = ("action", "object_id", "reason", "actor_user__email")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
