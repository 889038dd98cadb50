from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import health

# Staff log in through allauth (with its rate limits and MFA), never the bare admin form.
admin.site.login = secure_admin_login(admin.site.login)
admin.site.site_header = _("AFAS SB back office")
admin.site.site_title = _("AFAS SB back office")
admin.site.index_title = _("Beheer")

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include(("portal.api_urls", "api"), namespace="api")),
    path("api/v1/", include(("licensing.api_urls", "sb_api"), namespace="sb_api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("portal.urls")),
]
