from django.db.models import QuerySet

from .models import Organisation


def firm_clients(*, firm: Organisation) -> QuerySet[Organisation]:
    """The organisations an accountancy firm serves."""
    return Organisation.objects.filter(accountancy_firm=firm).order_by("legal_name")
