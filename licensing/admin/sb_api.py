"""Admin screens for sb_api (to be filled)."""
