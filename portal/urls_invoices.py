"""Portal URLs for invoices; included by portal/urls.py in the portal namespace.

"facturen" takes over the navigation's placeholder route of the same name
(portal/navigation.py: placeholder=False).
"""

from django.urls import path

from . import invoice_views

urlpatterns = [
    path("facturen/", invoice_views.invoices, name="facturen"),
]
