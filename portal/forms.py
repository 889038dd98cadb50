from django import forms
from django.contrib.auth import password_validation
from django.utils.translation import gettext_lazy as _

from licensing.models import Organisation

from .models import Membership, Role
from .services import ORGANISATION_DETAIL_FIELDS


class InvitationForm(forms.Form):
    email = forms.EmailField(
        label=_("E-mailadres"), widget=forms.EmailInput(attrs={"autocomplete": "off"})
    )
    role = forms.ChoiceField(label=_("Rol"), choices=Role.choices, initial=Role.MEMBER)
    is_subscription_contact = forms.BooleanField(
        label=_("Contactpersoon abonnement"), required=False
    )
    is_breach_contact = forms.BooleanField(label=_("Meldplicht Datalekken"), required=False)


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["role", "is_subscription_contact", "is_breach_contact"]


class OrganisationDetailsForm(forms.ModelForm):
    """What a customer's beheerder maintains; registration and relations stay with staff.

    Validation is the model's own (``Organisation.clean``), so the portal and the
    admin give the same Dutch messages.
    """

    class Meta:
        model = Organisation
        fields = list(ORGANISATION_DETAIL_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["peppol_scheme"].choices = [
            ("", _("Geen Peppol (facturen per e-mail)")),
            *Organisation.PeppolScheme.choices,
        ]


class AcceptInvitationForm(forms.Form):
    full_name = forms.CharField(label=_("Je naam"), max_length=150)
    password1 = forms.CharField(
        label=_("Kies een wachtwoord"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("Minstens 10 tekens; niet alleen cijfers en geen veelgebruikt wachtwoord."),
    )
    password2 = forms.CharField(
        label=_("Herhaal het wachtwoord"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", _("De wachtwoorden zijn niet gelijk."))
        elif first:
            from django.contrib.auth import get_user_model

            probe = get_user_model()(email=self.email, full_name=cleaned.get("full_name", ""))
            try:
                password_validation.validate_password(first, probe)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class SwitchOrganisationForm(forms.Form):
    organisation = forms.IntegerField(widget=forms.HiddenInput)
