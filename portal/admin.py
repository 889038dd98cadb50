from django.contrib import admin

from .models import Invitation, Membership


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
    list_filter = ("role",)
    search_fields = ("email", "organisation__legal_name")
    list_select_related = ("organisation",)
    readonly_fields = [f.name for f in Invitation._meta.fields if f.name != "token_hash"]
    exclude = ("token_hash",)

    def has_add_permission(self, request):
        return False
