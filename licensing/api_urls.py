"""SB application endpoints (service-token authenticated), under /api/v1/."""

urlpatterns: list = []
