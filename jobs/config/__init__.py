"""Declarations users edit (environments; job definitions later), loaded into validated models."""
