"""Portal URLs for administrations; included by portal/urls.py in the portal namespace."""

urlpatterns: list = []
