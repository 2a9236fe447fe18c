"""Typed stack config: pydantic models (the documentation of every key) and their loader."""
