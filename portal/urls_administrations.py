"""Portal URLs for administrations; included by portal/urls.py in the portal namespace."""

from django.urls import path

from . import administration_views as views

urlpatterns: list = [
    path("administraties/", views.administrations, name="administrations"),
    path("administraties/nieuw/", views.administration_create, name="administration_create"),
    path(
        "administraties/<int:pk>/archieflicentie/",
        views.administration_archive,
        name="administration_archive",
    ),
    path(
        "administraties/<int:pk>/verwijderen/",
        views.administration_delete,
        name="administration_delete",
    ),
    path(
        "administraties/<int:pk>/inkijklicentie/",
        views.administration_view_only,
        name="administration_view_only",
    ),
    path(
        "administraties/<int:pk>/exporteren-en-verwijderen/",
        views.administration_export_delete,
        name="administration_export_delete",
    ),
    path(
        "administraties/<int:pk>/overdragen/",
        views.administration_transfer,
        name="administration_transfer",
    ),
    path(
        "administraties/overdrachten/<int:pk>/accepteren/",
        views.transfer_accept,
        name="administration_transfer_accept",
    ),
    path(
        "administraties/overdrachten/<int:pk>/afwijzen/",
        views.transfer_decline,
        name="administration_transfer_decline",
    ),
    path(
        "administraties/overdrachten/<int:pk>/annuleren/",
        views.transfer_cancel,
        name="administration_transfer_cancel",
    ),
]
