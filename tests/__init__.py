"""Tests for splash_core."""
