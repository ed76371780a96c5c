"""Unit tests: fakes only, no network."""
