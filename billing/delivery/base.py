"""The transport interface and the errors that tell the service whether to retry."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string


class DeliveryError(Exception):
    """A delivery attempt that did not get through."""

    permanent = False


class TransientDeliveryError(DeliveryError):
    """Try again later: SMTP down, access point 5xx, a timeout."""


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help: the receiver refused the document (4xx), a missing setting."""

    permanent = True


@dataclass(frozen=True)
class Document:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Parcel:
    """Everything one attempt sends: the invoice, its stored documents, where to."""

    invoice: object
    pdf: Document
    ubl: Document
    recipients: tuple[str, ...]
    # Derived from the local row, so a retried call can be recognised by the receiver.
    idempotency_key: str


class Transport:
    """Sends one parcel; returns the receiver's id for it (message id, file name)."""

    channel: str

    def send(self, parcel: Parcel) -> str:
        raise NotImplementedError


PEPPOL_TRANSPORTS = {
    "outbox": "billing.delivery.peppol.OutboxPeppolTransport",
    "http": "billing.delivery.peppol.HttpAccessPointTransport",
}


def transport_for(channel: str) -> Transport:
    """The configured transport of a channel ("email" or "peppol")."""
    if channel == "email":
        from .email import EmailTransport

        return EmailTransport()
    if channel == "peppol":
        name = getattr(settings, "PEPPOL_TRANSPORT", "outbox")
        try:
            path = PEPPOL_TRANSPORTS[name]
        except KeyError:
            raise PermanentDeliveryError(
                f"Onbekende PEPPOL_TRANSPORT {name!r}; kies 'outbox' of 'http'."
            ) from None
        return import_string(path)()
    raise PermanentDeliveryError(f"Onbekend verzendkanaal {channel!r}.")
