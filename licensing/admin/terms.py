"""Admin screens for terms (to be filled)."""
