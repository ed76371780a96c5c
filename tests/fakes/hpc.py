"""An HPC facility whose jobs are Python handlers, one per job kind, writing into a :class:`FakeStorage`.

A job runs once ``duration_s`` has passed on the clock (when :meth:`FakeHPC.status` or
:meth:`FakeHPC.wait` looks at it). Its handler gets the :class:`JobSpec` and returns an exit
code (None means 0); it may write outputs into the shared storage. A handler that raises
makes the job FAILED with exit code 1 and the exception text as its log tail.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from datetime import datetime

import attrs

from splash_core.domain.errors import JobError, JobNotFound, TransientJobError
from splash_core.domain.models import Endpoint, JobSpec, JobState, JobStatus
from splash_core.ports.clock import ClockPort
from splash_core.ports.hpc import HPCJobPort
from tests.fakes._support import FaultPlan
from tests.fakes.storage import FakeStorage

JobHandler = Callable[[JobSpec], "int | None"]
"""Runs a job of one kind; returns its exit code (None means 0)."""


@attrs.define
class _Override:
    state: JobState
    exit_code: int | None
    reason: str | None


@attrs.define
class FakeJob:
    """One job as the fake facility sees it."""

    job_id: str
    spec: JobSpec
    submitted_at: float
    hang: bool = False
    override: _Override | None = None
    state: JobState = JobState.PENDING
    exit_code: int | None = None
    reason: str | None = None
    log_tail: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None


class FakeHPC(HPCJobPort):
    """An in-memory :class:`HPCJobPort`.

    Recorded: ``submitted`` (every spec that created a job), ``jobs`` (by id), ``cancelled``,
    ``submissions`` and ``jobs_created`` (a spec with a known non-empty ``idempotency_key``
    returns the existing job id).

    Args:
        storage: where handlers write outputs.
        clock: jobs take ``duration_s`` of it; waits poll every ``poll_s``.
        facility: the facility name this fake stands for.
        handlers: job kind -> handler; a kind with no handler is refused at submit.
    """

    def __init__(
        self,
        storage: FakeStorage,
        clock: ClockPort,
        *,
        facility: str = "nersc",
        handlers: Mapping[str, JobHandler] | None = None,
        duration_s: float = 60.0,
        poll_s: float = 10.0,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self._facility = facility
        self.handlers: dict[str, JobHandler] = dict(handlers or {})
        self.duration_s = duration_s
        self.poll_s = poll_s
        self.faults = FaultPlan()
        self.jobs: dict[str, FakeJob] = {}
        self.submitted: list[JobSpec] = []
        self.cancelled: list[str] = []
        self.submissions = 0
        self.jobs_created = 0
        self.status_calls = 0
        self._by_key: dict[str, str] = {}
        self._lost_status = 0
        self._overrides: list[_Override] = []
        self._hangs = 0

    # --- test controls -----------------------------------------------------

    def register(self, kind: str, handler: JobHandler) -> None:
        """Run ``handler`` for jobs of ``kind``."""
        self.handlers[kind] = handler

    def register_writer(self, kind: str, endpoints: Mapping[str, Endpoint], data: bytes = b"output") -> None:
        """Run jobs of ``kind`` by writing ``data`` at each expected output (exit code 0)."""

        def write(spec: JobSpec) -> int:
            for output in spec.expected_outputs:
                self.storage.put(endpoints[output.endpoint], output.path, data)
            return 0

        self.register(kind, write)

    def finish_next(self, state: JobState, exit_code: int | None = None, reason: str | None = None) -> None:
        """Make the next job end in ``state`` with ``exit_code`` (its handler still runs)."""
        self._overrides.append(_Override(state, exit_code, reason))

    def hang_next(self) -> None:
        """Make the next job stay RUNNING forever."""
        self._hangs += 1

    def lose_status_for(self, n_calls: int) -> None:
        """Make the next ``n_calls`` status lookups raise JobNotFound (the API's status cache lags)."""
        self._lost_status += n_calls

    def fail_next(self, n: int = 1, *, transient: bool = True) -> None:
        """Make the next ``n`` submit calls raise (TransientJobError, or JobError)."""
        self.faults.add(n, transient=transient, op="submit")

    # --- HPCJobPort --------------------------------------------------------

    @property
    def facility(self) -> str:
        """The facility name given at construction."""
        return self._facility

    def submit(self, spec: JobSpec) -> str:
        """Create a job for ``spec`` (or return the existing one for its idempotency key)."""
        fault = self.faults.take("submit")
        if fault is not None:
            if fault.transient:
                raise TransientJobError(f"injected: {self._facility} job service unavailable for {spec.name}")
            raise JobError(f"injected: {self._facility} refused job {spec.name}")
        if spec.kind not in self.handlers:
            raise JobError(
                f"{self._facility} has no job template for kind {spec.kind!r} (job {spec.name}); "
                f"known kinds: {sorted(self.handlers)}"
            )
        self.submissions += 1
        if spec.idempotency_key and spec.idempotency_key in self._by_key:
            return self._by_key[spec.idempotency_key]
        self.jobs_created += 1
        job_id = f"{self._facility}-job-{self.jobs_created:04d}"
        job = FakeJob(job_id, spec, self.clock.monotonic())
        if self._hangs:
            self._hangs -= 1
            job.hang = True
        if self._overrides:
            job.override = self._overrides.pop(0)
        self.jobs[job_id] = job
        self.submitted.append(spec)
        if spec.idempotency_key:
            self._by_key[spec.idempotency_key] = job_id
        return job_id

    def status(self, job_id: str) -> JobStatus:
        """The job's state now; it runs once its duration has passed."""
        self.status_calls += 1
        if self._lost_status > 0:
            self._lost_status -= 1
            raise JobNotFound(f"{self._facility} does not know job {job_id} (yet); ask again shortly")
        return self._advance(self._job(job_id))

    def wait(self, job_id: str, timeout_s: float) -> JobStatus:
        """Poll every ``poll_s`` until terminal or ``timeout_s`` passes; returns the last status.

        Lost status lookups (see :meth:`lose_status_for`) are retried on the next poll.
        """
        job = self._job(job_id)
        deadline = self.clock.monotonic() + timeout_s
        last = self._snapshot(job)
        while True:
            with contextlib.suppress(JobNotFound):  # the status cache lags right after submit
                last = self.status(job_id)
            if last.state.terminal or self.clock.monotonic() >= deadline:
                return last
            self.clock.sleep(min(self.poll_s, max(deadline - self.clock.monotonic(), 0.0)))

    def cancel(self, job_id: str) -> None:
        """Cancel a job that has not ended (recorded in ``cancelled``)."""
        job = self._job(job_id)
        if not job.state.terminal:
            job.state = JobState.CANCELLED
            job.reason = "cancelled"
            self.cancelled.append(job_id)

    # --- internals ---------------------------------------------------------

    def _job(self, job_id: str) -> FakeJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"{self._facility} has no job {job_id}")
        return job

    def _advance(self, job: FakeJob) -> JobStatus:
        elapsed = self.clock.monotonic() - job.submitted_at
        if job.state is JobState.PENDING and elapsed > 0:
            job.state = JobState.RUNNING
            job.started_at = self.clock.now()
        if job.state is JobState.RUNNING and not job.hang and elapsed >= self.duration_s:
            self._finish(job)
        return self._snapshot(job)

    def _finish(self, job: FakeJob) -> None:
        try:
            code = self.handlers[job.spec.kind](job.spec)
            job.exit_code = 0 if code is None else code
        except Exception as exc:  # a handler crash is a job failure, like a script that dies
            job.exit_code = 1
            job.log_tail = f"{type(exc).__name__}: {exc}"
        job.finished_at = self.clock.now()
        job.state = JobState.COMPLETED if job.exit_code == 0 else JobState.FAILED
        if job.state is JobState.FAILED:
            job.reason = f"exit code {job.exit_code}"
        if job.override is not None:
            job.state = job.override.state
            job.exit_code = job.override.exit_code
            job.reason = job.override.reason

    def _snapshot(self, job: FakeJob) -> JobStatus:
        return JobStatus(
            job_id=job.job_id,
            state=job.state,
            exit_code=job.exit_code,
            reason=job.reason,
            log_tail=job.log_tail,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


__all__ = ["FakeHPC", "FakeJob", "JobHandler"]
