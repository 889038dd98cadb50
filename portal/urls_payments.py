"""Portal URLs for Betaalgegevens; included by portal/urls.py in the portal namespace.

"betaalgegevens" takes over the navigation's placeholder route of the same name
(portal/navigation.py: placeholder=False).
"""

from django.urls import path

from . import payment_views

urlpatterns = [
    path("betaalgegevens/", payment_views.payment_details, name="betaalgegevens"),
]
