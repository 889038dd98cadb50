"""Portal URLs for termination; included by portal/urls.py in the portal namespace."""

from django.urls import path

from . import termination_views

urlpatterns: list = [
    path("opzeggen/", termination_views.termination, name="termination"),
    path(
        "opzeggen/intrekken/",
        termination_views.termination_withdraw_view,
        name="termination_withdraw",
    ),
]
