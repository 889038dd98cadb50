"""Money: euros as Decimal with two places, rounded in one place only.

Every amount that is stored, shown or summed into a total passes through
``quantize``. The rounding mode is part of the invoices' legal content:
changing it changes issued documents, so it must never change.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
CURRENCY = "EUR"


def to_decimal(value: Decimal | int | str) -> Decimal:
    """An exact Decimal from an int, a string or a Decimal; floats are refused."""
    if isinstance(value, float):
        raise TypeError("Money is never a float; pass a Decimal, int or string.")
    if isinstance(value, bool):
        raise TypeError("A boolean is not an amount.")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount") from None
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a finite amount")
    return amount


def quantize(value: Decimal | int | str) -> Decimal:
    """Round to whole cents, half away from zero (commercial rounding)."""
    return to_decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def to_cents(value: Decimal | int | str) -> int:
    """Whole cents of an amount that is already rounded (SEPA files count in cents)."""
    amount = to_decimal(value)
    if amount != quantize(amount):
        raise ValueError(f"{amount} has fractions of a cent; round it with quantize() first.")
    return int(amount * 100)


def format_eur(value: Decimal | int | str) -> str:
    """Dutch notation: € 1.234,56 (and € -12,00 for a negative amount)."""
    amount = quantize(value)
    sign = "-" if amount < 0 else ""
    whole, fraction = f"{abs(amount):.2f}".split(".")
    groups = f"{int(whole):,}".replace(",", ".")
    return f"€ {sign}{groups},{fraction}"
