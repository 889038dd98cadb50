from allauth.account.adapter import DefaultAccountAdapter


class PortalAccountAdapter(DefaultAccountAdapter):
    """Accounts are made by invitation (or by staff), never by open sign-up."""

    def is_open_for_signup(self, request):
        return False
