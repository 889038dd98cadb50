"""The API's error shape: ``{"message": ..., "code": ...}`` with a 4xx status."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import DomainError


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response({"message": exc.message, "code": exc.code}, status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "message": _first_message(response.data) or _("De gegevens zijn niet geldig."),
            "code": "invalid",
            "errors": response.data,
        }
        response.status_code = status.HTTP_400_BAD_REQUEST
    else:
        codes = exc.get_codes()
        response.data = {
            "message": str(exc.detail),
            "code": codes if isinstance(codes, str) else "error",
        }
    return response


def _first_message(errors) -> str:
    """The first concrete error, prefixed with its field, for callers reading logs."""
    if isinstance(errors, list):
        return next((m for m in (_first_message(e) for e in errors) if m), "")
    if isinstance(errors, dict):
        for field, value in errors.items():
            message = _first_message(value)
            if message:
                return message if field == "non_field_errors" else f"{field}: {message}"
        return ""
    return str(errors)
