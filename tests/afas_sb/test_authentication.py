import pytest
from allauth.account.models import EmailAddress
from django.urls import reverse

from tests.conftest import STAFF_PASSWORD, login_with_mfa
from tests.factories import MembershipFactory, UserFactory


def _login(client, email, password):
    return client.post(reverse("account_login"), {"login": email, "password": password})


@pytest.mark.django_db
def test_login_lands_on_the_dutch_dashboard(client):
    member = MembershipFactory()

    response = _login(client, member.user.email, STAFF_PASSWORD)

    assert response.status_code == 302
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert member.organisation.legal_name in page.content.decode()
    assert '<html lang="nl">' in page.content.decode()


@pytest.mark.django_db
def test_bad_login_gets_a_dutch_message_and_no_session(client):
    member = MembershipFactory()

    response = _login(client, member.user.email, "fout-wachtwoord")

    assert response.status_code == 200
    assert (
        "Het door jou opgegeven e-mailadres en/of wachtwoord is niet correct."
        in response.content.decode()
    )
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_repeated_failed_logins_are_rate_limited(client):
    member = MembershipFactory()
    for _ in range(5):
        _login(client, member.user.email, "fout-wachtwoord")

    response = _login(client, member.user.email, STAFF_PASSWORD)

    assert response.status_code == 200
    assert "Te veel inlogpogingen. Probeer het later nogmaals." in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_unverified_address_must_be_verified_first(client, mailbox):
    user = UserFactory()
    EmailAddress.objects.filter(user=user).update(verified=False)

    response = _login(client, user.email, STAFF_PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == reverse("account_email_verification_sent")
    assert len(mailbox) == 1
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_open_signup_is_closed(client):
    response = client.get(reverse("account_signup"))

    assert response.status_code == 200
    assert "account_signup" not in client.session
    assert b'name="password1"' not in response.content


@pytest.mark.django_db
def test_password_reset_sends_a_link(client, mailbox):
    user = UserFactory()

    client.post(reverse("account_reset_password"), {"email": user.email})

    assert len(mailbox) == 1
    assert "/accounts/password/reset/key/" in mailbox[0].body


@pytest.mark.django_db
def test_staff_without_mfa_must_set_it_up_before_the_admin(client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    _login(client, staff.email, STAFF_PASSWORD)

    response = client.get(reverse("admin:index"))

    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")


def test_staff_session_without_second_factor_is_sent_to_confirm_it(client, staff_user):
    client.force_login(staff_user)

    response = client.get(reverse("admin:index"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("mfa_reauthenticate"))


def test_staff_with_totp_reaches_the_admin(client, staff_user):
    login_with_mfa(client, staff_user)

    response = client.get(reverse("admin:index"))

    assert response.status_code == 200
    assert "AFAS SB back office" in response.content.decode()


def test_staff_login_asks_for_the_second_factor(client, staff_user):
    response = _login(client, staff_user.email, STAFF_PASSWORD)

    assert response["Location"] == reverse("mfa_authenticate")
    wrong = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert wrong.status_code == 200
    assert client.get(reverse("admin:index")).status_code == 302


@pytest.mark.django_db
def test_customer_cannot_open_the_admin(client):
    member = MembershipFactory()
    client.force_login(member.user)

    response = client.get(reverse("admin:index"), follow=True)

    assert response.status_code == 403


@pytest.mark.django_db
def test_admin_login_goes_through_allauth(client):
    response = client.get(reverse("admin:login"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.django_db
def test_english_is_available_on_request(client):
    client.cookies["django_language"] = "en"

    response = client.get(reverse("account_login"))

    assert '<html lang="en">' in response.content.decode()


@pytest.mark.django_db
def test_browser_language_does_not_override_dutch(client):
    response = client.get(reverse("account_login"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")

    assert '<html lang="nl">' in response.content.decode()


@pytest.mark.django_db
def test_english_speakers_get_an_english_portal(client):
    member = MembershipFactory()
    client.cookies["django_language"] = "en"
    client.force_login(member.user)

    page = client.get(reverse("portal:dashboard")).content.decode()

    assert "Welcome," in page
    assert "Personal details" in page
    assert "Welkom" not in page
