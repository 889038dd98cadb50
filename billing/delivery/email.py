"""E-mail delivery: the PDF and the UBL attached to a Dutch message, through Django's backend."""

from __future__ import annotations

import re
import smtplib
from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.utils import DNS_NAME
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext

from .base import Parcel, PermanentDeliveryError, TransientDeliveryError, Transport

TEMPLATE = "billing/email/invoice"


class EmailTransport(Transport):
    channel = "email"

    def send(self, parcel: Parcel) -> str:
        if not parcel.recipients:
            raise PermanentDeliveryError("Geen e-mailadres om de factuur naar te sturen.")
        message = self.message(parcel)
        try:
            message.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            # Every address refused: the same message will be refused tomorrow.
            raise PermanentDeliveryError(f"Alle ontvangers geweigerd: {exc}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            # Server down, connection refused, a 4xx greylist: the sweep tries again.
            raise TransientDeliveryError(f"E-mail niet verstuurd: {exc}") from exc
        return message.extra_headers["Message-ID"]

    def message(self, parcel: Parcel) -> EmailMultiAlternatives:
        invoice = parcel.invoice
        credit_note = invoice.kind == "credit_note"
        with translation.override("nl"):
            context = {
                "invoice": invoice,
                "credit_note": credit_note,
                "site_url": settings.SITE_URL,
                "vendor_name": settings.VENDOR_NAME,
            }
            text = render_to_string(f"{TEMPLATE}.txt", context)
            html = render_to_string(f"{TEMPLATE}.html", context)
            subject = (
                gettext("Creditnota %(number)s") if credit_note else gettext("Factuur %(number)s")
            ) % {"number": invoice.number}
        message = EmailMultiAlternatives(
            subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{subject}",
            body=text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=list(parcel.recipients),
            headers={
                # Named after the invoice, so the id in our records finds the message in logs.
                "Message-ID": make_msgid(
                    idstring=_token(parcel.idempotency_key), domain=str(DNS_NAME)
                ),
            },
        )
        message.attach_alternative(html, "text/html")
        for document in (parcel.pdf, parcel.ubl):
            message.attach(document.filename, document.content, document.content_type)
        return message


def _token(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "-", value)
