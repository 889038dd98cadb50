from .administrations import Administration, AdministrationTransfer
from .agreements import Agreement, ChangeSource, LicenceChange, LicenceLine, Termination
from .catalogue import Component, Price, PriceList, Product
from .organisations import Organisation
from .sb_api import CountEvent, ServiceToken
from .terms import TermsAcceptance, TermsSuggestion, TermsVersion

__all__ = [
    "Administration",
    "AdministrationTransfer",
    "Agreement",
    "ChangeSource",
    "Component",
    "CountEvent",
    "LicenceChange",
    "LicenceLine",
    "Organisation",
    "Price",
    "PriceList",
    "Product",
    "ServiceToken",
    "Termination",
    "TermsAcceptance",
    "TermsSuggestion",
    "TermsVersion",
]
