"""Tests of the beamline compositions."""
