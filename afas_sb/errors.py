"""The one base class of domain errors.

Services raise these with a message a customer can read (in Dutch, through
gettext). Forms show the message; the API answers ``{"message", "code"}`` with
``status`` (4xx).
"""


class DomainError(Exception):
    code = "invalid"
    status = 400

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = str(message)
        if code:
            self.code = code


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    status = 409


class PermissionDenied(DomainError):
    code = "permission_denied"
    status = 403
