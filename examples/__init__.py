"""Worked examples from docs/extending.md (run by tests/test_extending_example.py)."""
