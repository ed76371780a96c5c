"""Unit tests of the domain services."""
