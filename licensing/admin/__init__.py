"""Staff screens for licensing, one module per subdomain."""

from . import (  # noqa: F401
    administrations,
    agreements,
    catalogue,
    organisations,
    sb_api,
    terms,
)
from .organisations import OrganisationAdmin

__all__ = ["OrganisationAdmin"]
