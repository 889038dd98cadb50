"""Portal URLs for the licence page; included by portal/urls.py in the portal namespace."""

from django.urls import path

from . import licence_views

urlpatterns = [
    path("licentie/", licence_views.licence, name="licentie"),
]
