"""Running batch jobs on an HPC facility (NERSC Slurm, ALCF Globus Compute, local subprocesses)."""

from __future__ import annotations

from typing import Protocol

from splash_core.domain.models import JobSpec, JobStatus


class HPCJobPort(Protocol):
    """Submit a job, ask its state, wait for it, cancel it."""

    @property
    def facility(self) -> str:
        """The facility this port runs jobs on (e.g. ``nersc``)."""
        ...

    def submit(self, spec: JobSpec) -> str:
        """Submit ``spec`` and return the job id.

        Raises:
            TransientJobError: the service is unavailable; retry.
            JobError: the submission was refused.
        """
        ...

    def status(self, job_id: str) -> JobStatus:
        """The job's current state.

        Raises:
            JobNotFound: the service does not (yet) know the job.
        """
        ...

    def wait(self, job_id: str, timeout_s: float) -> JobStatus:
        """Poll until the job reaches a terminal state or ``timeout_s`` passes.

        Returns the last status seen (possibly not terminal on timeout).
        """
        ...

    def cancel(self, job_id: str) -> None:
        """Cancel the job if it is still pending or running."""
        ...
