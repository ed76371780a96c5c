"""A log filter that keeps secrets (and client ids) out of SDK log records.

Shared by the adapters whose SDKs log the client id at DEBUG level (globus-sdk,
globus-compute-sdk). SDK-free, so any adapter package may use it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

REDACTED = "<redacted>"


class Redactor(logging.Filter):
    """Replaces registered sensitive strings in the records of the loggers it is attached to."""

    def __init__(self) -> None:
        super().__init__()
        self._replacements: dict[str, str] = {}

    def protect(self, value: str, shown_as: str = REDACTED) -> None:
        """Show ``value`` as ``shown_as`` from now on (empty values are ignored)."""
        if value:
            self._replacements[value] = shown_as

    def attach(self, logger_names: Iterable[str]) -> None:
        """Filter the records of each named logger (once)."""
        for name in logger_names:
            logger = logging.getLogger(name)
            if self not in logger.filters:
                logger.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message when it contains a protected value; never drop it."""
        if not self._replacements:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the SDK's business, not ours
            return True
        redacted = message
        for value, shown_as in self._replacements.items():
            redacted = redacted.replace(value, shown_as)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


REDACTOR = Redactor()
"""The process-wide redactor every adapter registers its secrets with."""
