from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter(use_regex_path=False)
router.register("memberships", api.MembershipViewSet, basename="membership")

urlpatterns = [
    path("organisation/", api.CurrentOrganisationView.as_view(), name="current-organisation"),
    *router.urls,
]
