"""Handing a pain.008 batch to the bank, behind one interface (R12).

``settings.SEPA_SUBMISSION`` picks the way:

* "outbox" (default): the file goes into ``settings.SEPA_OUTBOX_DIR``
  (MEDIA_ROOT/sepa-outbox when empty) as ``<message id>.xml``, written
  atomically, where the bank's EBICS connector picks it up. The batch counts as
  submitted once the file is there.
* "manual": nothing is sent; staff download the file from admin (or with
  ``export_debit_batch``), upload it in the bank's portal and mark the batch
  submitted.

A submission may happen twice (the process died between writing the file and
recording it): the file then has the same name, the same bytes and the same
MsgId, and banks refuse a MsgId they have already processed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class Submission:
    """One way of getting a batch file to the bank."""

    name: str

    def submit(self, *, message_id: str, content: bytes) -> bool:
        """True when the file is now with the bank (the batch becomes submitted)."""
        raise NotImplementedError


class OutboxSubmission(Submission):
    name = "outbox"

    def __init__(self, directory: str | os.PathLike | None = None):
        configured = directory or getattr(settings, "SEPA_OUTBOX_DIR", "")
        self.directory = Path(configured or Path(settings.MEDIA_ROOT) / "sepa-outbox")

    def path_for(self, message_id: str) -> Path:
        return self.directory / f"{message_id}.xml"

    def submit(self, *, message_id: str, content: bytes) -> bool:
        target = self.path_for(message_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        # A hidden temporary name in the same folder, then a rename: the connector
        # never picks up half a file.
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, 0o644)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return True


class ManualSubmission(Submission):
    name = "manual"

    def submit(self, *, message_id: str, content: bytes) -> bool:
        return False


SUBMISSIONS: dict[str, type[Submission]] = {
    "outbox": OutboxSubmission,
    "manual": ManualSubmission,
}


def submission_for(name: str | None = None) -> Submission:
    """The configured way of submitting (settings.SEPA_SUBMISSION)."""
    name = name or getattr(settings, "SEPA_SUBMISSION", "outbox")
    try:
        return SUBMISSIONS[name]()
    except KeyError:
        raise ImproperlyConfigured(
            f"SEPA_SUBMISSION {name!r} is unknown; choose 'outbox' or 'manual'."
        ) from None
