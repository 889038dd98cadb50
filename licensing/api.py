"""The SB application's API: it pushes licence counts here (R3, R11, R16).

Authenticated with a service token (``Authorization: Bearer <token>``), never
with a portal session. Errors have the project's shape
``{"message": ..., "code": ...}``.
"""

from __future__ import annotations

import json

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from .authentication import IsSBApplication, ServiceTokenAuthentication
from .services.counts import EVENT_ID_MAX_LENGTH, MAX_COUNT, clean_kvk, licence_counts_record


class CountsJSONParser(JSONParser):
    """JSON only; a broken body gets a Dutch message with the place of the error."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except exceptions.ParseError as exc:
            cause = exc.__context__
            if isinstance(cause, json.JSONDecodeError):
                message = _(
                    "De body is geen geldige JSON (regel %(line)d, kolom %(column)d): "
                    "stuur een JSON-object."
                ) % {"line": cause.lineno, "column": cause.colno}
            else:
                message = _("De body is geen geldige JSON: stuur een JSON-object in UTF-8.")
            raise exceptions.ParseError(message, code="malformed_json") from None


# --- Serializers ----------------------------------------------------------------------


class CountField(serializers.IntegerField):
    """A whole number as a JSON number: no "5", no 5.0, no true."""

    default_error_messages = {
        "invalid": gettext_lazy("Een aantal is een geheel getal (een JSON-getal, geen tekst)."),
        "min_value": gettext_lazy("Een aantal moet 0 of meer zijn."),
        "max_value": gettext_lazy("Dit aantal is te groot."),
    }

    def __init__(self, **kwargs):
        super().__init__(min_value=0, max_value=MAX_COUNT, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class LicenceCountsRequestSerializer(serializers.Serializer):
    event_id = serializers.CharField(
        min_length=1,
        max_length=EVENT_ID_MAX_LENGTH,
        help_text=gettext_lazy(
            "Unieke id van deze telling in de SB-applicatie. Dezelfde id nog eens sturen "
            "verandert niets en geeft hetzelfde antwoord."
        ),
    )
    agreement = serializers.CharField(
        required=False,
        max_length=20,
        help_text=gettext_lazy("Overeenkomstnummer, bijv. SB0000001. Of organisation_kvk."),
    )
    organisation_kvk = serializers.CharField(
        required=False,
        max_length=20,
        help_text=gettext_lazy(
            "KvK-nummer van de klant (8 cijfers; België: ondernemingsnummer). Of agreement."
        ),
    )
    counts = serializers.DictField(
        child=CountField(),
        allow_empty=False,
        help_text=gettext_lazy(
            'Nieuw aantal per productonderdeel (code), bijv. {"users": 5}. '
            "Onderdelen die ontbreken blijven gelijk."
        ),
    )

    default_error_messages = {
        "identifier": gettext_lazy(
            "Geef óf het overeenkomstnummer (agreement) óf het KvK-nummer (organisation_kvk) mee."
        ),
    }

    def validate_agreement(self, value):
        return value.strip().upper()

    def validate_organisation_kvk(self, value):
        return clean_kvk(value)

    def validate(self, attrs):
        if bool(attrs.get("agreement")) == bool(attrs.get("organisation_kvk")):
            self.fail("identifier")
        return attrs

    def payload(self) -> dict:
        """The request as stored on the event and compared on a repeat: normalised."""
        data = self.validated_data
        return {
            "event_id": data["event_id"],
            "agreement": data.get("agreement"),
            "organisation_kvk": data.get("organisation_kvk"),
            "counts": dict(data["counts"]),
        }


class LicenceCountChangeSerializer(serializers.Serializer):
    component = serializers.CharField()
    old_quantity = serializers.IntegerField()
    new_quantity = serializers.IntegerField()


class LicenceCountsResponseSerializer(serializers.Serializer):
    event_id = serializers.CharField()
    agreement = serializers.CharField(help_text=gettext_lazy("Overeenkomstnummer."))
    quantities = serializers.DictField(
        child=serializers.IntegerField(),
        help_text=gettext_lazy("Alle actuele aantallen van de licentie, per onderdeel."),
    )
    applies_from = serializers.DateField(
        help_text=gettext_lazy(
            "Eerste dag van de volgende maand: vanaf die factuur gelden de nieuwe aantallen."
        )
    )
    changes = LicenceCountChangeSerializer(
        many=True, help_text=gettext_lazy("Wat deze telling veranderde (leeg: niets).")
    )


class SBApiErrorSerializer(serializers.Serializer):
    message = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(
        required=False, help_text=gettext_lazy("Per veld, bij ongeldige gegevens.")
    )


# --- The endpoint ---------------------------------------------------------------------

_EXAMPLE_RESPONSE = {
    "event_id": "sb-2026-03-15-000123",
    "agreement": "SB0000001",
    "quantities": {"base": 1, "users": 5, "administrations": 3},
    "applies_from": "2026-04-01",
    "changes": [{"component": "users", "old_quantity": 4, "new_quantity": 5}],
}


def _error(description, message, code):
    return OpenApiResponse(
        SBApiErrorSerializer,
        description=description,
        examples=[OpenApiExample(code, value={"message": message, "code": code})],
    )


class LicenceCountsView(APIView):
    """The SB application pushes the current licence counts of one customer."""

    authentication_classes = [ServiceTokenAuthentication]
    permission_classes = [IsSBApplication]
    parser_classes = [CountsJSONParser]

    def permission_denied(self, request, message=None, code=None):
        if request.authenticators and not request.successful_authenticator:
            raise exceptions.NotAuthenticated(
                _("Stuur de servicetoken mee: Authorization: Bearer <token>."),
                code="not_authenticated",
            )
        super().permission_denied(request, message=message, code=code)

    @extend_schema(
        operation_id="licence_counts_push",
        tags=["SB-applicatie"],
        summary="Licentieaantallen doorgeven",
        description=(
            "De SB-applicatie geeft de actuele aantallen (gebruikers, administraties, …) van "
            "één klant door. De nieuwe aantallen gelden direct als actuele aantallen en worden "
            "gefactureerd vanaf de factuur van volgende maand (`applies_from`). Hetzelfde "
            "`event_id` nog eens sturen verandert niets en geeft hetzelfde antwoord (200); "
            "met andere gegevens geeft het 409. Na beëindiging worden aantallen geweigerd "
            "(409). Bij een fout wordt niets opgeslagen."
        ),
        request=LicenceCountsRequestSerializer,
        responses={
            201: OpenApiResponse(
                LicenceCountsResponseSerializer,
                description="Nieuwe telling verwerkt.",
                examples=[OpenApiExample("verwerkt", value=_EXAMPLE_RESPONSE)],
            ),
            200: OpenApiResponse(
                LicenceCountsResponseSerializer,
                description="Deze telling was al verwerkt; het eerdere antwoord.",
            ),
            400: OpenApiResponse(
                SBApiErrorSerializer,
                description="Ongeldige body: geen JSON, negatief of geen geheel getal, "
                "onbekend onderdeel, geen of beide klantnummers.",
                examples=[
                    OpenApiExample(
                        "negatief aantal",
                        value={
                            "message": "De gegevens zijn niet geldig.",
                            "code": "invalid",
                            "errors": {"counts": {"users": ["Een aantal moet 0 of meer zijn."]}},
                        },
                    ),
                    OpenApiExample(
                        "onbekend onderdeel",
                        value={
                            "message": "Onbekende onderdelen: seats. Bekend zijn: "
                            "administrations, base, users.",
                            "code": "unknown_component",
                        },
                    ),
                ],
            ),
            401: _error(
                "Geen, een onbekende of een ingetrokken servicetoken.",
                "Deze servicetoken is ingetrokken; vraag een nieuwe aan.",
                "token_revoked",
            ),
            404: _error(
                "Onbekende klant.",
                "Er is geen klant met KvK-nummer 30123456.",
                "unknown_customer",
            ),
            409: _error(
                "Overeenkomst beëindigd, of dit event_id is al gebruikt met andere gegevens.",
                "Overeenkomst SB0000001 is beëindigd; de SB-applicatie kan geen aantallen meer "
                "doorgeven.",
                "agreement_terminated",
            ),
        },
        examples=[
            OpenApiExample(
                "op overeenkomstnummer",
                request_only=True,
                value={
                    "event_id": "sb-2026-03-15-000123",
                    "agreement": "SB0000001",
                    "counts": {"users": 5, "administrations": 3},
                },
            ),
            OpenApiExample(
                "op KvK-nummer",
                request_only=True,
                value={
                    "event_id": "sb-2026-03-15-000124",
                    "organisation_kvk": "30123456",
                    "counts": {"users": 5},
                },
            ),
        ],
    )
    def post(self, request):
        serializer = LicenceCountsRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        event, created = licence_counts_record(
            token=request.auth,
            event_id=data["event_id"],
            agreement_number=data.get("agreement"),
            organisation_kvk=data.get("organisation_kvk"),
            counts=dict(data["counts"]),
            payload=serializer.payload(),
        )
        return Response(
            event.response_body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )
