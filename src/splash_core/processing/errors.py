"""Errors raised by the processing code, with builtin bases so callers can catch broadly.

This package runs inside HPC job containers and imports nothing else from
``splash_core``, so it has its own small hierarchy rooted at :class:`ProcessingError`.
Every message names the offending path.
"""

from __future__ import annotations


class ProcessingError(Exception):
    """Root of every error raised by ``splash_core.processing``."""


class InputNotFoundError(ProcessingError, FileNotFoundError):
    """An input file or directory does not exist."""


class InvalidScanError(ProcessingError, ValueError):
    """An HDF5 file is unreadable or not in Data Exchange layout."""


class InvalidStackError(ProcessingError, ValueError):
    """A TIFF directory is empty or holds images of differing shape or dtype."""


class OutputExistsError(ProcessingError, FileExistsError):
    """The output already exists and overwriting was not asked for."""
