"""The portal's navigation: one list that the layout, the URLs and the tests share."""

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Area:
    slug: str
    label: str
    title: str
    intro: str
    empty: str
    # False once a real page took the area over; portal/urls.py then adds no placeholder route.
    placeholder: bool = True


# Areas whose pages later releases fill in. Until then each shows what it is for
# and where to go meanwhile, instead of a dead link.
AREAS = {
    area.slug: area
    for area in [
        Area(
            "licentie",
            _("Licentie"),
            _("Je licentie"),
            _("Hier zie je welke onderdelen je licentie heeft, hoeveel en wat dat per maand kost."),
            _("Er is nog geen licentie aan deze organisatie gekoppeld."),
            placeholder=False,
        ),
        Area(
            "facturen",
            _("Facturen"),
            _("Facturen"),
            _("Al je facturen als pdf en UBL, met betaalstatus en vervaldatum."),
            _("Er zijn nog geen facturen voor deze organisatie."),
            placeholder=False,
        ),
        Area(
            "betaalgegevens",
            _("Betaalgegevens"),
            _("Betaalgegevens"),
            _("Je machtiging voor automatische incasso en je IBAN."),
            _("Er is nog geen incassomachtiging vastgelegd."),
            placeholder=False,
        ),
        Area(
            "meldingen",
            _("Meldingen"),
            _("Meldingen"),
            _("Meld een incident (24/7) en volg alle communicatie in je dossier."),
            _("Je hebt nog geen meldingen gedaan."),
        ),
        Area(
            "wensenlijst",
            _("Wensenlijst"),
            _("Wensenlijst"),
            _("Deel je wensen voor AFAS SB en stem op die van anderen."),
            _("Er staan nog geen wensen op de lijst."),
        ),
        Area(
            "cursussen",
            _("Cursussen"),
            _("Cursussen en evenementen"),
            _("Schrijf je in voor de cursus 'AFAS SB' en andere evenementen."),
            _("Er zijn op dit moment geen cursussen gepland."),
        ),
        Area(
            "privacy",
            _("Privacy"),
            _("Privacy en beveiliging"),
            _(
                "Subverwerkers, securitymeldingen, toegang door medewerkers en je gegevens exporteren."
            ),
            _("Er zijn geen securitymeldingen voor deze organisatie."),
        ),
        Area(
            "indexation",
            _("Indexatie"),
            _("Prijsindexatie"),
            _(
                "De jaarlijkse prijsaanpassing volgens de CPI van juli, per onderdeel van je licentie."
            ),
            _(
                "De indexatie voor volgend jaar wordt in de laatste week van september bekendgemaakt."
            ),
            placeholder=False,
        ),
        Area(
            "voorwaarden",
            _("Voorwaarden"),
            _("Voorwaarden"),
            _("De versie van de voorwaarden die voor jou geldt, en wat er veranderd is."),
            _("Er is nog geen versie van de voorwaarden gepubliceerd in de portal."),
            placeholder=False,
        ),
    ]
}
