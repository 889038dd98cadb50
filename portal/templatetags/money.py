from django import template

from afas_sb.money import format_eur

register = template.Library()


@register.filter
def eur(value):
    """€ 1.234,56; an empty value shows a dash."""
    if value is None or value == "":
        return "—"
    return format_eur(value)
