"""Portal URL for the indexation page (R6); included by portal/urls.py in the portal namespace."""

from django.urls import path

from . import indexation_views

urlpatterns = [
    path("indexatie/", indexation_views.indexation, name="indexation"),
]
