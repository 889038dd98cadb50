"""Portal URLs for terms; included by portal/urls.py in the portal namespace.

"voorwaarden" takes over the navigation's placeholder route of the same name
(portal/navigation.py: placeholder=False).
"""

from django.urls import path

from . import terms_views

urlpatterns = [
    path("voorwaarden/", terms_views.terms, name="voorwaarden"),
    path(
        "voorwaarden/<int:version_id>/accepteren/",
        terms_views.terms_accept,
        name="terms_accept",
    ),
    path("voorwaarden/verbetervoorstel/", terms_views.terms_suggest, name="terms_suggest"),
]
