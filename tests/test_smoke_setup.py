import pytest

from tests.factories import MembershipFactory


@pytest.mark.django_db
def test_factories_build_a_member():
    membership = MembershipFactory()
    assert membership.organisation.memberships.count() == 1
