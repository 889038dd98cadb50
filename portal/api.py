"""The portal's JSON API for the signed-in customer, scoped like every portal page."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from licensing.models import Organisation

from .models import Membership
from .tenancy import get_access, scoped


class OrganisationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organisation
        fields = [
            "id",
            "kind",
            "legal_name",
            "kvk_number",
            "vat_id",
            "country",
            "street",
            "postcode",
            "city",
            "billing_email",
            "peppol_scheme",
            "peppol_endpoint_id",
            "status",
        ]


class MembershipSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email")
    name = serializers.CharField(source="user.get_full_name")

    class Meta:
        model = Membership
        fields = ["id", "email", "name", "role", "is_subscription_contact", "is_breach_contact"]


class CurrentOrganisationView(APIView):
    """The organisation the session acts for."""

    @extend_schema(responses=OrganisationSerializer)
    def get(self, request):
        access = get_access(request)
        if access is None:
            raise NotFound(_("Je bent nog niet aan een organisatie gekoppeld."))
        return Response(OrganisationSerializer(access.organisation).data)


class MembershipViewSet(viewsets.ReadOnlyModelViewSet):
    """People of the active organisation, with roles and contact flags."""

    serializer_class = MembershipSerializer
    lookup_value_converter = "int"

    def get_queryset(self):
        return scoped(self.request, Membership.objects.select_related("user")).order_by("pk")
