"""Rendered documents of an invoice (PDF, UBL), each stored once with its checksum (R9, R10)."""
