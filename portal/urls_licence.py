"""Portal URLs for licence; included by portal/urls.py in the portal namespace."""

urlpatterns: list = []
