from django.urls import include, path

from . import views
from .navigation import AREAS

app_name = "portal"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("organisatie/wisselen/", views.switch_organisation, name="switch_organisation"),
    path("persoonlijke-gegevens/", views.contacts, name="contacts"),
    path("persoonlijke-gegevens/organisatie/", views.organisation_edit, name="organisation_edit"),
    path("persoonlijke-gegevens/uitnodigen/", views.invitation_create, name="invitation_create"),
    path(
        "persoonlijke-gegevens/uitnodigingen/<int:pk>/opnieuw/",
        views.invitation_resend,
        name="invitation_resend",
    ),
    path(
        "persoonlijke-gegevens/uitnodigingen/<int:pk>/intrekken/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path(
        "persoonlijke-gegevens/contactpersonen/<int:pk>/",
        views.membership_edit,
        name="membership_edit",
    ),
    path(
        "persoonlijke-gegevens/contactpersonen/<int:pk>/verwijderen/",
        views.membership_remove,
        name="membership_remove",
    ),
    path("uitnodiging/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("", include("portal.urls_licence")),
    path("", include("portal.urls_termination")),
    path("", include("portal.urls_terms")),
    path("", include("portal.urls_administrations")),
    path("", include("portal.urls_invoices")),
    path("", include("portal.urls_indexation")),
    path("", include("portal.urls_payments")),
    *[
        path(f"{slug}/", views.area, {"slug": slug}, name=slug)
        for slug, area in AREAS.items()
        if area.placeholder
    ],
]
