"""Fixtures that build real signed sample sets with the project's own generator.

Owned by the sample-generator work; imported from tests/conftest.py.
"""
