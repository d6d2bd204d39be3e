"""Helpers shared by the tests (never imported by src/ or bench/)."""
