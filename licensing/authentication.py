"""The SB application authenticates with a per-environment service token (R3).

``Authorization: Bearer <token>``. The caller is the SB application, not a
person: ``request.user`` is an :class:`SBApplication`, ``request.auth`` the
:class:`~licensing.models.ServiceToken`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from .models import ServiceToken
from .services.tokens import service_token_find, service_token_touch

KEYWORD = "Bearer"


@dataclass(frozen=True)
class SBApplication:
    """The SB application as the caller of an API request; never a Django user.

    It has no ``pk``, so audit rows record it by actor kind, not as a user.
    """

    token: ServiceToken

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    @property
    def environment(self) -> str:
        return self.token.environment

    def __str__(self) -> str:
        return f"SB-applicatie ({self.token.get_environment_display()}, {self.token.prefix}…)"


class ServiceTokenAuthentication(BaseAuthentication):
    """Bearer service token, looked up by its SHA-256; revoked tokens are refused."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            # No bearer credentials: the permission check answers 401.
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                _("Zet de token na 'Bearer ', zonder spaties: Authorization: Bearer <token>."),
                code="invalid_header",
            )
        try:
            raw_token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raw_token = ""
        token = service_token_find(raw_token=raw_token)
        if token is None:
            raise exceptions.AuthenticationFailed(
                _("Deze servicetoken is onbekend."), code="invalid_token"
            )
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(
                _("Deze servicetoken is ingetrokken; vraag een nieuwe aan."),
                code="token_revoked",
            )
        service_token_touch(token=token)
        return SBApplication(token=token), token

    def authenticate_header(self, request):
        # A value here makes DRF answer 401 (not 403) to a missing or bad token.
        return f'{KEYWORD} realm="sb-api"'


class IsSBApplication(BasePermission):
    """Only the SB application; a signed-in portal or staff session is not enough."""

    def has_permission(self, request, view):
        return isinstance(request.user, SBApplication)


class ServiceTokenScheme(OpenApiAuthenticationExtension):
    """Shows the bearer service token in the OpenAPI schema."""

    target_class = ServiceTokenAuthentication
    name = "sbServiceToken"

    def get_security_definition(self, auto_schema):
        scheme = build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=KEYWORD
        )
        scheme["description"] = _(
            "Servicetoken van een SB-omgeving, aangemaakt met `manage.py create_service_token`."
        )
        return scheme
