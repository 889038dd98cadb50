"""Outgoing e-mail: the one interface every app uses to write to people.

The transport is Django's e-mail backend, chosen by EMAIL_URL: files under
var/mail in development, memory in tests, SMTP in production. Messages are
rendered from a text and an HTML template so every mail looks the same.
"""

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation

logger = logging.getLogger(__name__)


def send_templated_mail(
    *, to: list[str], subject: str, template: str, context: dict, language: str = "nl"
) -> None:
    """Render ``<template>.txt`` and ``<template>.html`` and send them to ``to``.

    Call it from ``transaction.on_commit`` so a rolled-back change sends nothing.
    """
    with translation.override(language):
        full_context = {
            "site_url": settings.SITE_URL,
            "vendor_name": settings.VENDOR_NAME,
            **context,
        }
        text = render_to_string(f"{template}.txt", full_context)
        html = render_to_string(f"{template}.html", full_context)
    message = EmailMultiAlternatives(
        subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{subject}",
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
    )
    message.attach_alternative(html, "text/html")
    message.send()
    logger.info("mail sent", extra={"template": template, "recipients": len(to)})
