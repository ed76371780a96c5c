"""Run one HPC job to a checked end: submit, poll through the clock, check state, exit code and outputs.

A job counts as a success only when its final state is COMPLETED, its exit code is 0 and every
expected output exists (a file, or a folder with at least one file in it). "Job not found"
right after submission is the job service's status cache lagging, so within a grace window it
means "ask again"; after the window it is an error. Every terminal outcome is a
``JobFinished`` event in the ledger, and a job whose idempotency key is recorded DONE is not
submitted again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import attrs

from splash_core.domain.errors import (
    InvalidInput,
    JobError,
    JobFailed,
    JobNotFound,
    JobOutputsMissing,
    JobTimeout,
    SplashError,
    TransientError,
    UnknownEndpoint,
)
from splash_core.domain.events import JobFinished, StepRecord, StepState
from splash_core.domain.models import Endpoint, JobSpec, JobState, JobStatus, OutputSpec
from splash_core.domain.services.retry import RetryPolicy, call_with_retry

if TYPE_CHECKING:
    from splash_core.ports.clock import ClockPort
    from splash_core.ports.hpc import HPCJobPort
    from splash_core.ports.ledger import LedgerPort
    from splash_core.ports.storage import StoragePort

logger = logging.getLogger(__name__)

LOG_TAIL_CHARS = 2000
"""How much of a job's log tail goes into an error message."""


class JobRunner:
    """Submit a job and see it through to a checked end.

    Args:
        hpc: the facility to run on.
        storage: where expected outputs are looked for.
        ledger: records ``JobFinished`` events and the idempotency step.
        clock: polling sleeps and deadlines go through it.
        endpoints: endpoint name -> endpoint, for the outputs' endpoints.
        poll_interval_s: seconds between status polls.
        not_found_grace_s: how long after submission "job not found" means "not yet visible".
        timeout_slack_s: seconds allowed beyond the job's time limit (queue wait, start-up)
            before it is cancelled.
        retry: how transient submission and storage errors are retried.
    """

    def __init__(
        self,
        hpc: HPCJobPort,
        storage: StoragePort,
        ledger: LedgerPort,
        clock: ClockPort,
        endpoints: Mapping[str, Endpoint],
        *,
        poll_interval_s: float = 30.0,
        not_found_grace_s: float = 300.0,
        timeout_slack_s: float = 1800.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        if poll_interval_s <= 0:
            raise InvalidInput(f"job poll interval must be positive, got {poll_interval_s} s")
        self._hpc = hpc
        self._storage = storage
        self._ledger = ledger
        self._clock = clock
        self._endpoints = dict(endpoints)
        self._poll = poll_interval_s
        self._grace = not_found_grace_s
        self._slack = timeout_slack_s
        self._retry = retry or RetryPolicy()

    @property
    def facility(self) -> str:
        """The facility the jobs run on."""
        return self._hpc.facility

    def run(self, spec: JobSpec, *, inputs: Sequence[str] = ()) -> JobStatus:
        """Run ``spec`` to its end and check it.

        Args:
            spec: the job; ``expected_outputs`` must exist afterwards.
            inputs: what the job reads (recorded in the ledger event).

        Returns:
            The final status (COMPLETED, exit code 0); for a job found DONE in the ledger under
            ``spec.idempotency_key``, the recorded status, without submitting.

        Raises:
            UnknownEndpoint: an expected output names an unknown endpoint (nothing was submitted).
            JobFailed: the job ended in another state or with a non-zero exit code.
            JobOutputsMissing: the job said it succeeded but an output is missing.
            JobNotFound: the service still did not know the job after the grace window.
            JobTimeout: the job ran past its time limit plus slack and was cancelled.
            JobError: the submission was refused (or kept failing transiently).
        """
        outputs = [(self._endpoint(o, spec), o) for o in spec.expected_outputs]
        key = spec.idempotency_key
        recorded = self._ledger.step(key) if key else None
        previous = _load(recorded.detail) if recorded is not None else {}
        if recorded is not None and recorded.state is StepState.DONE:
            logger.info("job %s (%s) already done as %s; not resubmitted", spec.name, key, previous.get("job_id"))
            return JobStatus(
                job_id=previous.get("job_id", ""),
                state=JobState.COMPLETED,
                exit_code=int(previous.get("exit_code", "0")),
            )
        # a failed attempt is retried as a new job; an interrupted one is the same job again
        attempt = int(previous.get("attempt", "0") or 0)
        if recorded is None or recorded.state is StepState.FAILED:
            attempt += 1
        started = self._clock.monotonic()
        job_id = self._resume(recorded) or self._submit(spec, attempt)
        if key:
            self._step(key, StepState.STARTED, {"job_id": job_id, "attempt": str(attempt)})
        status, error = self._wait(spec, job_id, started)
        if error is None:
            error = self._check(spec, status, outputs)
        if error is not None:
            self._finish(spec, job_id, status, inputs, started)
            if key:
                self._step(key, StepState.FAILED, {"job_id": job_id, "attempt": str(attempt), "error": str(error)})
            raise error
        self._finish(spec, job_id, status, inputs, started, outputs)
        if key:
            done = {"job_id": job_id, "attempt": str(attempt), "exit_code": str(status.exit_code)}
            self._step(key, StepState.DONE, done)
        return status

    # --- internals ---------------------------------------------------------

    def _endpoint(self, output: OutputSpec, spec: JobSpec) -> Endpoint:
        try:
            return self._endpoints[output.endpoint]
        except KeyError:
            raise UnknownEndpoint(
                f"job {spec.name}: expected output {output.path} is on endpoint {output.endpoint!r}, "
                f"which is not configured (known: {', '.join(sorted(self._endpoints))})"
            ) from None

    def _resume(self, recorded: StepRecord | None) -> str | None:
        """The job id of a run that died while its job was in flight, if the service still knows it."""
        if recorded is None or recorded.state is not StepState.STARTED:
            return None
        job_id = _load(recorded.detail).get("job_id")
        if not job_id:
            return None
        try:
            status = self._hpc.status(job_id)
        except SplashError as exc:
            logger.info("job %s from an interrupted run is not known any more (%s); resubmitting", job_id, exc)
            return None
        logger.info("resuming job %s (%s) from an interrupted run", job_id, status.state.value)
        return job_id

    def _submit(self, spec: JobSpec, attempt: int) -> str:
        if spec.idempotency_key:
            spec = attrs.evolve(spec, idempotency_key=f"{spec.idempotency_key}#{attempt}")
        job_id = call_with_retry(
            lambda: self._hpc.submit(spec),
            policy=self._retry,
            clock=self._clock,
            what=f"submit job {spec.name} to {self.facility}",
        )
        logger.info("submitted job %s to %s as %s", spec.name, self.facility, job_id)
        return job_id

    def _wait(self, spec: JobSpec, job_id: str, started: float) -> tuple[JobStatus, JobError | None]:
        """Poll until the job ends; the last status, and the error when it never ended."""
        deadline = started + spec.time_limit_s + self._slack
        while True:
            try:
                status = self._hpc.status(job_id)
            except JobNotFound as exc:
                waited = self._clock.monotonic() - started
                if waited > self._grace:
                    lost = JobNotFound(
                        f"job {job_id} ({spec.name}) on {self.facility} is still unknown {waited:.0f} s "
                        f"after submission: {exc}; check the facility's queue before resubmitting"
                    )
                    lost.__cause__ = exc
                    return JobStatus(job_id=job_id, state=JobState.UNKNOWN), lost
                status = JobStatus(job_id=job_id, state=JobState.UNKNOWN)
            except TransientError as exc:
                logger.warning("status of job %s on %s unavailable (%s); asking again", job_id, self.facility, exc)
                status = JobStatus(job_id=job_id, state=JobState.UNKNOWN)
            if status.state.terminal:
                return status, None
            if self._clock.monotonic() >= deadline:
                self._cancel(job_id)
                error = JobTimeout(
                    f"job {job_id} ({spec.name}) on {self.facility} did not finish within its limit of "
                    f"{spec.time_limit_s:.0f} s plus {self._slack:.0f} s slack (last state "
                    f"{status.state.value}); it was cancelled. Raise time_limit_minutes or check the queue"
                )
                return attrs.evolve(status, state=JobState.CANCELLED), error
            self._clock.sleep(min(self._poll, deadline - self._clock.monotonic()))

    def _cancel(self, job_id: str) -> None:
        try:
            self._hpc.cancel(job_id)
        except SplashError as exc:
            logger.error("could not cancel job %s on %s: %s; cancel it by hand", job_id, self.facility, exc)

    def _check(
        self, spec: JobSpec, status: JobStatus, outputs: Sequence[tuple[Endpoint, OutputSpec]]
    ) -> JobError | None:
        about = (
            f"job {status.job_id} ({spec.name}) on {self.facility} ended {status.state.value} "
            f"with exit code {status.exit_code}"
        )
        if not status.succeeded:
            reason = f" ({status.reason})" if status.reason else ""
            return JobFailed(f"{about}{reason}; see its log and resubmit.{_tail(status)}")
        try:
            missing = [f"{o.path} on {o.endpoint}" for endpoint, o in outputs if not self._exists(endpoint, o)]
        except SplashError as exc:
            return JobOutputsMissing(
                f"{about} but its outputs could not be checked ({exc}); it does not count as a success, "
                "run it again once the storage answers"
            )
        if missing:
            return JobOutputsMissing(
                f"{about} but expected output(s) are missing: {', '.join(missing)}; "
                f"the job did not do its work, see its log.{_tail(status)}"
            )
        return None

    def _exists(self, endpoint: Endpoint, output: OutputSpec) -> bool:
        def look() -> bool:
            if self._storage.stat(endpoint, output.path) is not None:
                return True
            return next(iter(self._storage.list(endpoint, output.path)), None) is not None

        return call_with_retry(
            look, policy=self._retry, clock=self._clock, what=f"look for {output.path} on {endpoint.name}"
        )

    def _finish(
        self,
        spec: JobSpec,
        job_id: str,
        status: JobStatus,
        inputs: Sequence[str],
        started: float,
        outputs: Sequence[tuple[Endpoint, OutputSpec]] = (),
    ) -> None:
        self._ledger.record(
            JobFinished(
                job_id=job_id,
                facility=self.facility,
                name=spec.name,
                state=status.state,
                exit_code=status.exit_code,
                at=self._clock.now(),
                outputs=tuple(o.path.value for _, o in outputs),
                inputs=tuple(inputs),
                seconds=self._clock.monotonic() - started,
            )
        )

    def _step(self, key: str, state: StepState, detail: Mapping[str, str]) -> None:
        self._ledger.record_step(StepRecord(key, state, self._clock.now(), json.dumps(dict(detail))))


def _tail(status: JobStatus) -> str:
    tail = status.log_tail.strip()
    if not tail:
        return " (no log tail)"
    if len(tail) > LOG_TAIL_CHARS:
        tail = "..." + tail[-LOG_TAIL_CHARS:]
    return f"\nlog tail:\n{tail}"


def _load(detail: str) -> dict[str, str]:
    try:
        loaded = json.loads(detail) if detail else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


__all__ = ["LOG_TAIL_CHARS", "JobRunner"]
