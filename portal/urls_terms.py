"""Portal URLs for terms; included by portal/urls.py in the portal namespace."""

urlpatterns: list = []
