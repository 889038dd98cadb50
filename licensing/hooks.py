"""Checks other apps add to licensing's writes, without licensing importing them.

Dependencies point one way (licensing ← billing): billing knows who must pay by
direct debit (R12), licensing only knows it must ask before an agreement
starts. An app registers its check once, in its AppConfig.ready().
"""

from __future__ import annotations

from collections.abc import Callable

from .models import Organisation

AgreementStartCheck = Callable[..., None]

_agreement_start_checks: list[AgreementStartCheck] = []


def register_agreement_start_check(fn: AgreementStartCheck) -> AgreementStartCheck:
    """``fn(*, organisation)`` raises a DomainError when that organisation may not start an agreement.

    Registering the same function again is harmless (ready() may run more than once in tests).
    """
    if fn not in _agreement_start_checks:
        _agreement_start_checks.append(fn)
    return fn


def run_agreement_start_checks(*, organisation: Organisation) -> None:
    """Run every registered check; called under the organisation's row lock, so the
    checks see the state the new agreement will be created in."""
    for check in _agreement_start_checks:
        check(organisation=organisation)
