"""Portal URLs for termination; included by portal/urls.py in the portal namespace."""

urlpatterns: list = []
