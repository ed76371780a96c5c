"""Polling Globus tasks: a backoff schedule, the system clock, task documents and events."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import attrs

from splash_core.domain.models import TaskStatus


@attrs.frozen
class PollPolicy:
    """How often to ask Globus about a running task.

    Polls start ``initial_s`` apart and stretch by ``factor`` up to ``max_s``.
    """

    initial_s: float = 2.0
    max_s: float = 60.0
    factor: float = 1.5

    def __attrs_post_init__(self) -> None:
        if self.initial_s <= 0 or self.max_s < self.initial_s or self.factor < 1:
            raise ValueError(
                f"PollPolicy needs 0 < initial_s <= max_s and factor >= 1, got {self.initial_s}, "
                f"{self.max_s}, {self.factor}"
            )

    def intervals(self) -> Iterator[float]:
        """Successive waits between polls."""
        interval = self.initial_s
        while True:
            yield interval
            interval = min(self.max_s, interval * self.factor)


def task_status(doc: Any) -> TaskStatus:
    """The splash status of a Globus task document (INACTIVE counts as ACTIVE)."""
    status = doc.get("status")
    if status == "SUCCEEDED":
        return TaskStatus.SUCCEEDED
    if status == "FAILED":
        fatal = doc.get("fatal_error") or {}
        return TaskStatus.CANCELLED if fatal.get("code") == "CANCELED" else TaskStatus.FAILED
    return TaskStatus.ACTIVE


def parse_time(value: Any) -> datetime | None:
    """A Globus timestamp (``2024-01-02 03:04:05+00:00`` or ISO 8601) as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


_FILE_LINE = re.compile(r"^File:\s*(.+?)\s*$", re.MULTILINE)


def event_text(event: Any) -> str:
    """``CODE on /the/file (description)`` for a task event; the file comes from its details."""
    text = str(event.get("code") or "UNKNOWN")
    details = str(event.get("details") or "")
    found = _FILE_LINE.search(details)
    if found:
        text += f" on {found.group(1)}"
    description = event.get("description")
    if description:
        text += f" ({description})"
    elif details and not found:
        short = " ".join(details.split())
        text += f" ({short[:200]}{'…' if len(short) > 200 else ''})"
    return text
