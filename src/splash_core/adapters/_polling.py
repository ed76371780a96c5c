"""Waiting for a job by polling its status, shared by the HPC job adapters."""

from __future__ import annotations

import logging
from collections.abc import Callable

from splash_core.domain.errors import TransientJobError
from splash_core.domain.models import JobState, JobStatus
from splash_core.ports.clock import ClockPort

logger = logging.getLogger(__name__)


def poll_job(
    status: Callable[[str], JobStatus],
    job_id: str,
    *,
    clock: ClockPort,
    timeout_s: float,
    interval_s: float,
    backoff: float,
    max_interval_s: float,
    where: str,
) -> JobStatus:
    """Poll ``status(job_id)`` with backoff until the job is terminal or ``timeout_s`` passes.

    A transient status error counts as UNKNOWN and polling goes on until the deadline; the last
    status seen is returned (possibly not terminal on timeout).

    Raises:
        JobNotFound: whatever ``status`` raises other than a transient error.
    """
    deadline = clock.monotonic() + max(0.0, timeout_s)
    delay = interval_s
    while True:
        try:
            last = status(job_id)
        except TransientJobError as exc:
            logger.warning("status of job %s on %s unavailable (%s); asking again", job_id, where, exc)
            last = JobStatus(job_id=job_id, state=JobState.UNKNOWN, reason=f"status unavailable: {exc}")
        remaining = deadline - clock.monotonic()
        if last.state.terminal or remaining <= 0:
            return last
        clock.sleep(min(delay, remaining))
        delay = min(delay * backoff, max_interval_s)
