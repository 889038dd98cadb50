"""Peppol delivery: a local outbox for development, an HTTP access-point client behind a setting.

``settings.PEPPOL_TRANSPORT`` picks one: "outbox" (default) writes the UBL into
``settings.PEPPOL_OUTBOX_DIR`` (default MEDIA_ROOT/peppol-outbox), where a
developer or a sidecar picks it up; "http" POSTs it to a certified access
point at ``settings.PEPPOL_ACCESS_POINT_URL`` with a bearer token.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings

from .base import Parcel, PermanentDeliveryError, TransientDeliveryError, Transport

DEFAULT_TIMEOUT_SECONDS = 30
# 408 Request Timeout and 429 Too Many Requests are the receiver asking us to come back.
RETRYABLE_4XX = frozenset({408, 425, 429})


class PeppolTransport(Transport):
    """Sends the UBL document (which embeds the PDF) to the buyer's Peppol endpoint."""

    channel = "peppol"


class OutboxPeppolTransport(PeppolTransport):
    """One file per invoice in a folder; written atomically so a reader never sees half of it."""

    def __init__(self, directory: str | os.PathLike | None = None):
        configured = directory or getattr(settings, "PEPPOL_OUTBOX_DIR", None)
        self.directory = Path(configured or Path(settings.MEDIA_ROOT) / "peppol-outbox")

    def path_for(self, parcel: Parcel) -> Path:
        return self.directory / f"{parcel.invoice.number}.xml"

    def send(self, parcel: Parcel) -> str:
        target = self.path_for(parcel)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Same folder, then rename: atomic on one file system; a resend replaces the file.
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(parcel.ubl.content)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise TransientDeliveryError(f"Peppol-outbox niet beschreven: {exc}") from exc
        return target.name


class HttpAccessPointTransport(PeppolTransport):
    """POSTs the UBL to an access point; 2xx sent, 4xx refused for good, 5xx/timeout later.

    The Idempotency-Key is the invoice number, so an access point that saw a
    request before (we crashed before recording its answer) does not send the
    invoice over the network twice.
    """

    def __init__(self, *, url: str | None = None, token: str | None = None, timeout=None):
        self.url = url or getattr(settings, "PEPPOL_ACCESS_POINT_URL", "")
        self.token = token or getattr(settings, "PEPPOL_ACCESS_POINT_TOKEN", "")
        self.timeout = timeout or getattr(
            settings, "PEPPOL_ACCESS_POINT_TIMEOUT", DEFAULT_TIMEOUT_SECONDS
        )

    def send(self, parcel: Parcel) -> str:
        if not self.url:
            raise PermanentDeliveryError("PEPPOL_ACCESS_POINT_URL is niet ingesteld.")
        if not self.url.startswith(("https://", "http://")):
            raise PermanentDeliveryError("PEPPOL_ACCESS_POINT_URL moet met https:// beginnen.")
        invoice = parcel.invoice
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            self.url,
            data=parcel.ubl.content,
            method="POST",
            headers={
                "Content-Type": parcel.ubl.content_type,
                "Accept": "application/json",
                "Authorization": f"Bearer {self.token}",
                "Idempotency-Key": parcel.idempotency_key,
                "X-Peppol-Receiver": f"{invoice.buyer_peppol_scheme}:{invoice.buyer_peppol_id}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                body = response.read()
                header_id = response.headers.get("X-Message-Id", "")
        except urllib.error.HTTPError as exc:
            detail = _detail(exc)
            if 400 <= exc.code < 500 and exc.code not in RETRYABLE_4XX:
                raise PermanentDeliveryError(
                    f"Access point weigert de factuur (HTTP {exc.code}): {detail}"
                ) from exc
            raise TransientDeliveryError(
                f"Access point tijdelijk niet beschikbaar (HTTP {exc.code}): {detail}"
            ) from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise TransientDeliveryError(f"Access point niet bereikbaar: {exc}") from exc
        return _message_id(body) or header_id or parcel.idempotency_key


def _message_id(body: bytes) -> str:
    try:
        data = json.loads(body or b"null")
    except ValueError:
        return ""
    if isinstance(data, dict):
        return str(data.get("message_id") or data.get("id") or "")
    return ""


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        return exc.read(500).decode("utf-8", "replace").strip() or exc.reason
    except Exception:  # the status code already says enough
        return str(exc.reason)
