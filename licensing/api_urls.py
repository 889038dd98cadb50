"""SB application endpoints (service-token authenticated), under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("licence-counts/", api.LicenceCountsView.as_view(), name="licence-counts"),
]
