"""Getting an issued invoice to its customer (R10): e-mail or Peppol, behind one interface.

A transport only moves bytes; the state (pending, sending, sent, failed), the
retries and the back-off live in ``billing.services.delivery``.
"""

from .base import (
    DeliveryError,
    Parcel,
    PermanentDeliveryError,
    TransientDeliveryError,
    Transport,
    transport_for,
)
from .email import EmailTransport
from .peppol import HttpAccessPointTransport, OutboxPeppolTransport, PeppolTransport

__all__ = [
    "DeliveryError",
    "EmailTransport",
    "HttpAccessPointTransport",
    "OutboxPeppolTransport",
    "Parcel",
    "PeppolTransport",
    "PermanentDeliveryError",
    "TransientDeliveryError",
    "Transport",
    "transport_for",
]
