"""Staff reach the back office only after a second factor (TOTP or a recovery code)."""

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from .mfa import session_passed_mfa, user_has_mfa


class StaffMfaRequiredMiddleware:
    """Guard /admin/: a staff session without MFA is sent to set it up or to log in again.

    allauth asks for the second factor at login for every user who has one, so
    a session that recorded an MFA step passed it. A staff user without an
    authenticator is sent to activate TOTP first.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.admin_prefix = None

    def __call__(self, request):
        if self.admin_prefix is None:
            self.admin_prefix = reverse("admin:index")
        user = getattr(request, "user", None)
        if (
            request.path.startswith(self.admin_prefix)
            and user is not None
            and user.is_authenticated
            and user.is_staff
        ):
            if not user_has_mfa(user):
                messages.warning(
                    request,
                    _("Stel eerst tweestapsverificatie in; daarna kun je de back office openen."),
                )
                return redirect("mfa_activate_totp")
            if not session_passed_mfa(request):
                messages.warning(
                    request,
                    _("Log opnieuw in met je tweede factor om de back office te openen."),
                )
                return redirect(f"{reverse('mfa_reauthenticate')}?next={request.path}")
        return self.get_response(request)
