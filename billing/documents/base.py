"""The renderer interface and the one place where rendered documents are stored.

An issued invoice never changes (R9), so neither do its documents: each format
is rendered once, stored with its SHA-256 and served from storage ever after.
"""

from __future__ import annotations

import hashlib

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from billing.models import InvoiceDocument


class DocumentRenderer:
    """Turns an invoice into one document format.

    ``render`` returns ``(filename, content_type, bytes)`` and must be a pure
    function of the invoice's stored (snapshot) fields, lines and VAT rows.
    """

    format: str
    content_type: str

    def render(self, invoice) -> tuple[str, str, bytes]:
        raise NotImplementedError


def document_store(*, invoice, renderer: DocumentRenderer) -> InvoiceDocument:
    """The invoice's document in the renderer's format, rendered and stored on first use.

    Idempotent: an existing document is returned unchanged. Safe under
    concurrency: two callers may both render, the unique (invoice, format)
    constraint lets one row win, and the loser removes the file it wrote and
    returns the winner's row.

    Call it outside a transaction where possible: rendering
    holds no lock that way, and a caller's rollback cannot leave a written
    file without its row.
    """
    existing = _stored(invoice, renderer.format)
    if existing is not None:
        return existing

    # Render before writing anything: no row is locked while WeasyPrint works.
    filename, content_type, data = renderer.render(invoice)
    document = InvoiceDocument(
        invoice=invoice,
        format=renderer.format,
        filename=filename,
        content_type=content_type,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )
    # The storage picks a free name, so a concurrent writer never overwrites our file.
    document.file.save(filename, ContentFile(data), save=False)
    try:
        with transaction.atomic():
            document.save(force_insert=True)
    except IntegrityError:
        document.file.storage.delete(document.file.name)
        winner = _stored(invoice, renderer.format)
        if winner is None:  # the IntegrityError was about something else
            raise
        return winner
    except BaseException:
        document.file.storage.delete(document.file.name)
        raise
    return document


def _stored(invoice, format: str) -> InvoiceDocument | None:
    return InvoiceDocument.objects.filter(invoice=invoice, format=format).first()
