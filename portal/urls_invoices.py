"""Portal URLs for invoices; included by portal/urls.py in the portal namespace.

"facturen" takes over the navigation's placeholder route of the same name
(portal/navigation.py: placeholder=False).
"""

from django.urls import path

from . import invoice_views

urlpatterns = [
    path("facturen/", invoice_views.invoices, name="facturen"),
    path(
        "facturen/<int:pk>/pdf/",
        invoice_views.invoice_document,
        {"format": "pdf"},
        name="invoice_pdf",
    ),
    path(
        "facturen/<int:pk>/ubl/",
        invoice_views.invoice_document,
        {"format": "ubl"},
        name="invoice_ubl",
    ),
]
