"""Admin screens for agreements (to be filled)."""
