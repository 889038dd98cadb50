"""Money: Decimal euros, ROUND_HALF_UP to cents, whole cents for SEPA, Dutch notation."""

import decimal
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from afas_sb.money import CENT, CURRENCY, ZERO, format_eur, quantize, to_cents, to_decimal


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.005", "0.01"),
        ("-0.005", "-0.01"),
        ("2.675", "2.68"),  # 2.67 as a float; exact as a string
        ("-2.675", "-2.68"),
        ("0.125", "0.13"),  # half-even would give 0.12
        ("0.135", "0.14"),
        ("1.005", "1.01"),
        ("1.015", "1.02"),
        ("1.025", "1.03"),  # half-even would give 1.02
        ("0.004", "0.00"),
        ("0.0049999", "0.00"),
        ("-0.0049999", "0.00"),
        ("0.0050001", "0.01"),
        ("19.999", "20.00"),
        ("1.1", "1.10"),
        ("10", "10.00"),
        ("-12", "-12.00"),
    ],
)
def test_quantize_rounds_half_up_to_whole_cents(value, expected):
    result = quantize(value)

    assert result == Decimal(expected)
    assert result.as_tuple().exponent == -2


def test_quantize_accepts_decimal_and_int():
    assert str(quantize(Decimal("2.675"))) == "2.68"
    assert str(quantize(7)) == "7.00"
    assert str(quantize(-7)) == "-7.00"


@pytest.mark.parametrize("context_rounding", [decimal.ROUND_HALF_EVEN, decimal.ROUND_DOWN])
def test_quantize_ignores_the_ambient_decimal_context_rounding(context_rounding):
    with decimal.localcontext() as context:
        context.rounding = context_rounding

        assert quantize("0.125") == Decimal("0.13")
        assert quantize("-0.005") == Decimal("-0.01")


@pytest.mark.parametrize("function", [to_decimal, quantize, to_cents, format_eur])
@pytest.mark.parametrize("value", [0.1, 2.675, 1.0, 0.0])
def test_money_functions_refuse_floats(function, value):
    with pytest.raises(TypeError, match="float"):
        function(value)


@pytest.mark.parametrize("function", [to_decimal, quantize, to_cents, format_eur])
@pytest.mark.parametrize("value", [True, False])
def test_money_functions_refuse_booleans(function, value):
    with pytest.raises(TypeError, match="boolean"):
        function(value)


def test_to_decimal_is_exact():
    assert to_decimal("0.1") == Decimal("0.1")
    assert to_decimal("2.675") == Decimal("2.675")  # not rounded
    assert to_decimal(5) == Decimal(5)
    amount = Decimal("1.23")
    assert to_decimal(amount) is amount


@pytest.mark.parametrize(
    ("value", "cents"),
    [
        ("12.34", 1234),
        ("-12.34", -1234),
        ("0.01", 1),
        ("-0.01", -1),
        ("0", 0),
        (0, 0),
        (5, 500),
        ("1.1", 110),
        ("1.000", 100),  # more places, but no fraction of a cent
        ("1234567.89", 123456789),
        (Decimal("99999999.99"), 9999999999),
    ],
)
def test_to_cents_counts_whole_cents(value, cents):
    result = to_cents(value)

    assert result == cents
    assert type(result) is int


@pytest.mark.parametrize("value", ["0.001", "1.005", "-0.005", Decimal("12.345"), "0.0001"])
def test_to_cents_refuses_fractions_of_a_cent(value):
    with pytest.raises(ValueError, match="fractions of a cent"):
        to_cents(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1234.56", "€ 1.234,56"),
        ("-12", "€ -12,00"),
        (-12, "€ -12,00"),
        (0, "€ 0,00"),
        ("0", "€ 0,00"),
        ("-0.004", "€ 0,00"),  # rounds to zero: no minus sign
        ("0.005", "€ 0,01"),
        ("2.675", "€ 2,68"),
        ("0.5", "€ 0,50"),
        (12, "€ 12,00"),
        ("999.99", "€ 999,99"),
        ("1000", "€ 1.000,00"),
        ("-1000", "€ -1.000,00"),
        ("1234567.89", "€ 1.234.567,89"),
        ("-1234567.891", "€ -1.234.567,89"),
        ("1000000000", "€ 1.000.000.000,00"),
        (Decimal("999999.995"), "€ 1.000.000,00"),
    ],
)
def test_format_eur_uses_dutch_notation(value, expected):
    assert format_eur(value) == expected


def test_money_constants():
    assert str(CENT) == "0.01"
    assert str(ZERO) == "0.00"
    assert CURRENCY == "EUR"


# --- properties ------------------------------------------------------------------------

amounts = st.decimals(
    min_value=Decimal("-1000000000"),
    max_value=Decimal("1000000000"),
    places=6,
    allow_nan=False,
    allow_infinity=False,
)
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)


@PROPERTY_SETTINGS
@given(amount=amounts)
def test_quantize_is_within_half_a_cent_and_idempotent(amount):
    rounded = quantize(amount)

    assert rounded.as_tuple().exponent == -2
    assert abs(rounded - amount) <= Decimal("0.005")
    assert quantize(rounded) == rounded


@PROPERTY_SETTINGS
@given(amount=amounts)
def test_quantize_rounds_symmetrically_around_zero(amount):
    assert quantize(-amount) == -quantize(amount)


@PROPERTY_SETTINGS
@given(amount=amounts)
def test_to_cents_of_a_rounded_amount_is_that_amount_in_cents(amount):
    rounded = quantize(amount)

    assert Decimal(to_cents(rounded)) / 100 == rounded


@PROPERTY_SETTINGS
@given(amount=amounts)
def test_format_eur_parses_back_to_the_rounded_amount(amount):
    text = format_eur(amount)

    assert text.startswith("€ ")
    number = text.removeprefix("€ ").replace(".", "").replace(",", ".")
    assert Decimal(number) == quantize(amount)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "twaalf", ""])
def test_quantize_refuses_what_is_not_a_finite_amount(value):
    with pytest.raises(ValueError):
        quantize(value)
