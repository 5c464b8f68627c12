"""Helpers for the entry points: instantiation, summaries, logging setup."""
