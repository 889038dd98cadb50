"""Admin screens for administrations (to be filled)."""
