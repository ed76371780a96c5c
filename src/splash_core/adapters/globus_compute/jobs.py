"""Jobs as Globus Compute tasks on one endpoint: :class:`GlobusComputeJobs` implements :class:`HPCJobPort`.

- ``submit`` renders the shell command of ``spec.kind`` (:mod:`.templates`) and submits it as
  one task of a ``ShellFunction`` whose command is ``{command}`` (registered on first use, or
  the configured ``function_id``) to the configured endpoint; the job id is the task id. A spec
  whose idempotency key this instance has submitted already gets the same task id. Across
  restarts that map is gone: the domain's ``JobRunner`` resumes an interrupted job by the task
  id it wrote to its ledger, and ``status`` answers for any task id, submitted here or not.
- ``status`` asks ``Client.get_task``: a pending task is PENDING (received, waiting for the
  endpoint, nodes or a worker) or RUNNING; a finished one is COMPLETED only with return code 0;
  a non-zero return code is FAILED with that exit code (124 under ``enforce_time_limit`` is
  TIMEOUT) and the tail of stderr and stdout in ``log_tail``; a task that raised on the
  endpoint is FAILED with the remote exception (NODE_FAIL when its worker was lost). A task id
  the service does not know is :class:`JobNotFound`.
- ``wait`` polls with backoff through the injected clock.
- ``cancel``: Globus Compute cannot stop a task an endpoint has received (the SDK's
  ``Executor`` can only drop futures not yet sent). The job is recorded as CANCELLED here and
  ``status`` reports CANCELLED from then on - the domain treats that as a failure - while the
  command may go on until it ends or its ``timeout`` stops it. A new process asking about the
  task sees the service's view again.
- API trouble (HTTP 429/5xx, network) is retried within bounds and then
  :class:`TransientJobError`. A submission that failed that way may still have reached the
  service (Globus Compute has no submission id to deduplicate on), so a retried submission can
  run a job twice; the job commands write to fixed output paths, so a second run redoes the
  same work.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from splash_core.adapters._clock import SystemClock as _SystemClock
from splash_core.adapters._polling import poll_job
from splash_core.adapters.globus_compute._errors import Retrier, connect_error, describe
from splash_core.adapters.globus_compute.client import (
    ClientFactory,
    ComputeClient,
    GlobusComputeCredentials,
    default_client_factory,
)
from splash_core.adapters.globus_compute.settings import GlobusComputeSettings
from splash_core.adapters.globus_compute.templates import render_task
from splash_core.domain.errors import JobError, JobNotFound
from splash_core.domain.models import JobSpec, JobState, JobStatus
from splash_core.ports.clock import ClockPort
from splash_core.ports.hpc import HPCJobPort

logger = logging.getLogger(__name__)

SHELL_FUNCTION_COMMAND = "{command}"
"""The command of the ``ShellFunction`` every task runs; the rendered script is its ``command``."""
SHELL_FUNCTION_NAME = "splash_shell_job"

_RUNNING = frozenset({"running", "execution-start", "execution-end", "result-received", "result-enqueued"})
_WAITING = {
    "received": "received by Globus Compute",
    "waiting-for-ep": "waiting for the endpoint to take it (is the endpoint online?)",
    "waiting-for-nodes": "waiting for nodes (the endpoint's batch job is queued)",
    "waiting-for-launch": "waiting for a worker",
}
_UNKNOWN_TASK = re.compile(r"unknown task|task.*not found|no such task|does not exist", re.IGNORECASE)
_WORKER_LOST = re.compile(r"WorkerLost|worker.*lost|ManagerLost", re.IGNORECASE)
TIMEOUT_EXIT_CODE = 124
"""What ``timeout`` (and ``ShellFunction``'s own walltime) exits with when the limit is reached."""


@attrs.frozen
class _ShellOutcome:
    returncode: int
    stdout: str
    stderr: str
    exception_name: str | None = None


def _epoch(value: Any) -> datetime | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if seconds <= 0:
        return None
    return datetime.fromtimestamp(seconds, UTC)


def _shell_outcome(result: Any) -> _ShellOutcome | None:
    """A ``ShellFunction`` result (a dict with ``return_dict=True``, else a ``ShellResult``)."""
    if isinstance(result, Mapping):
        code, out, err, exc_name = (
            result.get("returncode"),
            result.get("stdout"),
            result.get("stderr"),
            result.get("exception_name"),
        )
    else:
        code, out, err, exc_name = (
            getattr(result, "returncode", None),
            getattr(result, "stdout", None),
            getattr(result, "stderr", None),
            getattr(result, "exception_name", None),
        )
    if isinstance(code, bool) or not isinstance(code, int):
        return None
    return _ShellOutcome(code, str(out or ""), str(err or ""), str(exc_name) if exc_name else None)


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


class GlobusComputeJobs(HPCJobPort):
    """Shell jobs on a Globus Compute endpoint (e.g. at ALCF), submitted and watched by task id.

    Args:
        settings: the endpoint, job templates, polling and retry bounds.
        credentials: the confidential client the SDK client acts as (used on first call).
        facility: the facility name this port stands for (``alcf``).
        client_factory: builds the SDK client on first use (default:
            :func:`~splash_core.adapters.globus_compute.client.default_client_factory`);
            tests inject a stand-in.
        clock: polling sleeps and the times of local records go through it.
    """

    def __init__(
        self,
        settings: GlobusComputeSettings,
        credentials: GlobusComputeCredentials,
        *,
        facility: str = "alcf",
        client_factory: ClientFactory | None = None,
        clock: ClockPort | None = None,
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        self._facility = facility
        self._client_factory = client_factory or default_client_factory
        self._clock = clock or _SystemClock()
        self._retry = Retrier(settings.retry_attempts, settings.retry_timeout_s, settings.retry_wait_max_s)
        self._lock = threading.RLock()
        self._submit_lock = threading.Lock()
        self._client: ComputeClient | None = None
        self._function_id: str | None = settings.function_id
        self._by_key: dict[str, str] = {}
        self._submitted: dict[str, datetime] = {}
        self._final: dict[str, JobStatus] = {}

    def __repr__(self) -> str:
        return f"GlobusComputeJobs(facility={self._facility}, endpoint={self._settings.endpoint_id})"

    @property
    def facility(self) -> str:
        """The facility name given at construction."""
        return self._facility

    @property
    def settings(self) -> GlobusComputeSettings:
        """The settings this port runs with."""
        return self._settings

    # --- HPCJobPort --------------------------------------------------------------

    def submit(self, spec: JobSpec) -> str:
        """Render the command of ``spec.kind`` and submit it to the endpoint; the task id.

        Raises:
            TransientJobError: Globus Compute is unavailable or throttling (after retries).
            JobError: no template for the kind, bad parameters, or the service refused.
            CredentialsError: Globus Auth rejected the client.
        """
        template = self._settings.templates.get(spec.kind)
        if template is None:
            known = ", ".join(sorted(self._settings.templates)) or "none"
            raise JobError(
                f"{self._facility} has no job template for kind {spec.kind!r} (job {spec.name}); "
                f"known kinds: {known} - add it under options.globus_compute.templates"
            )
        command = render_task(spec, template, self._settings)
        key = spec.idempotency_key
        with self._submit_lock:  # one submission at a time, so a key never makes two tasks
            with self._lock:
                existing = self._by_key.get(key) if key else None
            if existing is not None:
                logger.info("job %s was already submitted as task %s; not submitted again", spec.name, existing)
                return existing
            task_id = self._submit_command(spec, command)
            with self._lock:
                self._submitted[task_id] = self._clock.now()
                if key:
                    self._by_key[key] = task_id
        logger.info(
            "submitted job %s (%s) to endpoint %s on %s as task %s",
            spec.name,
            spec.kind,
            self._settings.endpoint_id,
            self._facility,
            task_id,
        )
        return task_id

    def status(self, job_id: str) -> JobStatus:
        """The task's state now; see the module docstring for the rules.

        Raises:
            JobNotFound: ``job_id`` is not a task id, or the service does not know it.
            TransientJobError: the service could not answer (after bounded retries).
            CredentialsError: Globus Auth rejected the client.
        """
        task_id = self._check_id(job_id)
        with self._lock:
            final = self._final.get(task_id)
        if final is not None:
            return final
        status = self._fetch(task_id)
        if status.state.terminal:
            with self._lock:
                status = self._final.setdefault(task_id, status)
        return status

    def wait(self, job_id: str, timeout_s: float) -> JobStatus:
        """Poll until the task ends or ``timeout_s`` passes; the last status seen.

        Polls after ``poll_interval_s``, backing off by ``poll_backoff`` up to
        ``poll_max_interval_s``. While the service cannot answer (transient errors) the status
        is UNKNOWN and polling goes on until the deadline.

        Raises:
            JobNotFound: the service does not know the task.
        """
        s = self._settings
        return poll_job(
            self.status,
            job_id,
            clock=self._clock,
            timeout_s=timeout_s,
            interval_s=s.poll_interval_s,
            backoff=s.poll_backoff,
            max_interval_s=s.poll_max_interval_s,
            where=self._facility,
        )

    def cancel(self, job_id: str) -> None:
        """Record the task as cancelled (a task that has ended already is left alone).

        Globus Compute cannot stop a task: the command may still run on the endpoint until it
        ends or ``timeout`` stops it; this instance reports CANCELLED for it from now on.

        Raises:
            JobNotFound: the service does not know the task.
            TransientJobError: the service could not say whether the task has ended.
        """
        current = self.status(job_id)
        if current.state.terminal:
            logger.info("task %s on %s has ended (%s); nothing to cancel", job_id, self._facility, current.state.value)
            return
        cancelled = JobStatus(
            job_id=current.job_id,
            state=JobState.CANCELLED,
            reason=(
                "cancelled by splash; Globus Compute cannot stop a task an endpoint has received, "
                "so its command may still run until it ends or reaches its time limit"
            ),
            started_at=current.started_at,
            finished_at=self._clock.now(),
        )
        with self._lock:
            recorded = self._final.setdefault(current.job_id, cancelled)
        if recorded is cancelled:
            logger.warning(
                "task %s on endpoint %s recorded as cancelled; Globus Compute cannot stop it, it may still run",
                job_id,
                self._settings.endpoint_id,
            )

    # --- operations --------------------------------------------------------------

    def register_function(self) -> str:
        """Register the ``ShellFunction`` tasks run and return its id (for ``function_id``).

        Registering once and configuring the id avoids a registration per process, and lets
        an endpoint that only runs allowed functions list it.

        Raises:
            TransientJobError: Globus Compute is unavailable (after retries).
            JobError: the registration was refused.
        """
        from globus_compute_sdk import ShellFunction

        function = ShellFunction(
            SHELL_FUNCTION_COMMAND,
            name=SHELL_FUNCTION_NAME,
            snippet_lines=max(self._settings.log_tail_lines, 1),
            return_dict=True,
        )
        client = self._sdk()
        function_id = self._retry(
            lambda: client.register_function(function, description="splash_core: run a rendered shell job"),
            "registering the splash shell function with Globus Compute",
        )
        logger.info("registered the splash shell function as %s", function_id)
        return str(function_id)

    # --- internals -----------------------------------------------------------------

    def _sdk(self) -> ComputeClient:
        with self._lock:
            if self._client is None:
                what = f"connecting to Globus Compute as client {self._credentials.short_id}"
                try:
                    self._client = self._retry(
                        lambda: self._client_factory(self._credentials), what, passthrough=(Exception,)
                    )
                except Exception as exc:
                    raise connect_error(exc, what) from exc
            return self._client

    def _function(self) -> str:
        with self._lock:
            if self._function_id is None:
                self._function_id = self.register_function()
            return self._function_id

    def _submit_command(self, spec: JobSpec, command: str) -> str:
        client = self._sdk()
        function_id = self._function()
        s = self._settings
        what = f"submitting job {spec.name} ({spec.kind}) to endpoint {s.endpoint_id}"

        def run() -> Mapping[str, Any]:
            batch = client.create_batch(
                resource_specification=dict(s.resource_specification) or None,
                user_endpoint_config=dict(s.user_endpoint_config) or None,
            )
            batch.add(function_id, args=(), kwargs={"command": command})
            return client.batch_run(s.endpoint_id, batch)

        answer = self._retry(run, what)
        try:
            task_id = str(answer["tasks"][function_id][0])
            uuid.UUID(task_id)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise JobError(
                f"{what}: the answer named no task id ({describe(exc)}); the job may have been submitted - "
                f"check the endpoint's tasks before resubmitting"
            ) from exc
        return task_id

    def _check_id(self, job_id: str) -> str:
        try:
            return str(uuid.UUID(job_id))
        except (ValueError, TypeError, AttributeError):
            raise JobNotFound(f"{job_id!r} is not a Globus Compute task id (a UUID) on {self._facility}") from None

    def _fetch(self, task_id: str) -> JobStatus:
        from globus_compute_sdk.errors import SerializationError, TaskExecutionFailed

        client = self._sdk()
        what = f"asking Globus Compute about task {task_id} on {self._facility}"
        try:
            task = self._retry(
                lambda: client.get_task(task_id),
                what,
                passthrough=(TaskExecutionFailed, SerializationError),
            )
        except TaskExecutionFailed as exc:
            return self._raised(task_id, exc)
        except SerializationError as exc:
            return self._ended(
                task_id,
                JobState.FAILED,
                reason=f"the task ended but its result could not be read here ({describe(exc)}); see the endpoint logs",
            )
        if not isinstance(task, Mapping):
            raise JobError(f"{what}: unexpected answer of type {type(task).__name__}")
        return self._from_task(task_id, task)

    def _from_task(self, task_id: str, task: Mapping[str, Any]) -> JobStatus:
        raw = str(task.get("status", "unknown")).lower()
        started, finished = self._times(task)
        if task.get("pending", True):
            if raw in _RUNNING:
                return JobStatus(job_id=task_id, state=JobState.RUNNING, reason=raw, started_at=started)
            if raw == "unknown":
                return JobStatus(
                    job_id=task_id, state=JobState.UNKNOWN, reason="Globus Compute does not know its state yet"
                )
            return JobStatus(job_id=task_id, state=JobState.PENDING, reason=_WAITING.get(raw, raw), started_at=started)
        if "result" not in task:
            started = started or self._submitted.get(task_id)
            reason = str(task.get("reason") or "unknown")
            if _UNKNOWN_TASK.search(reason) and task_id not in self._submitted:
                raise JobNotFound(f"Globus Compute does not know task {task_id} on {self._facility}: {reason}")
            return self._ended(
                task_id, JobState.FAILED, reason=f"Globus Compute says {raw}: {reason}", started=started, at=finished
            )
        outcome = _shell_outcome(task["result"])
        started = started or self._submitted.get(task_id)
        if outcome is None:
            return self._ended(
                task_id,
                JobState.FAILED,
                reason=(
                    f"the task returned a {type(task['result']).__name__}, not a shell result; "
                    "options.globus_compute.function_id must be a ShellFunction (see register_function)"
                ),
                started=started,
                at=finished,
            )
        return self._shell_status(task_id, outcome, started, finished)

    def _shell_status(
        self, task_id: str, outcome: _ShellOutcome, started: datetime | None, finished: datetime | None
    ) -> JobStatus:
        lines = self._settings.log_tail_lines
        code = outcome.returncode
        if code == 0:
            return self._ended(
                task_id, JobState.COMPLETED, exit_code=0, log=_tail(outcome.stdout, lines), started=started, at=finished
            )
        parts = []
        if outcome.stderr.strip():
            parts.append(f"[stderr]\n{_tail(outcome.stderr, lines)}")
        if outcome.stdout.strip():
            parts.append(f"[stdout]\n{_tail(outcome.stdout, lines)}")
        log = "\n".join(parts)
        timed_out = outcome.exception_name == "subprocess.TimeoutExpired" or (
            code == TIMEOUT_EXIT_CODE and self._settings.enforce_time_limit
        )
        if timed_out:
            return self._ended(
                task_id,
                JobState.TIMEOUT,
                exit_code=code,
                reason="the command reached its time limit and was stopped",
                log=log,
                started=started,
                at=finished,
            )
        reason = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        return self._ended(
            task_id, JobState.FAILED, exit_code=code, reason=reason, log=log, started=started, at=finished
        )

    def _raised(self, task_id: str, exc: Exception) -> JobStatus:
        remote = str(getattr(exc, "remote_data", "") or exc)
        last = next((line.strip() for line in reversed(remote.splitlines()) if line.strip()), "no details")
        lost = bool(_WORKER_LOST.search(remote))
        return self._ended(
            task_id,
            JobState.NODE_FAIL if lost else JobState.FAILED,
            reason=("its worker was lost: " if lost else "the task raised on the endpoint: ") + last,
            log=_tail(remote, self._settings.log_tail_lines),
            started=self._submitted.get(task_id),
            at=_epoch(getattr(exc, "completion_t", None)),
        )

    def _ended(
        self,
        task_id: str,
        state: JobState,
        *,
        exit_code: int | None = None,
        reason: str | None = None,
        log: str = "",
        started: datetime | None = None,
        at: datetime | None = None,
    ) -> JobStatus:
        finished = at or self._clock.now()
        if started is not None and started > finished:
            started = finished  # the local submission time and the service's clock may disagree a little
        status = JobStatus(
            job_id=task_id,
            state=state,
            exit_code=exit_code,
            reason=reason,
            log_tail=log,
            started_at=started,
            finished_at=finished,
        )
        if state is not JobState.COMPLETED:
            logger.info("task %s on %s ended %s (%s)", task_id, self._facility, state.value, reason)
        return status

    @staticmethod
    def _times(task: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
        details = task.get("details")
        transitions = details.get("task_transitions") if isinstance(details, Mapping) else None
        transitions = transitions if isinstance(transitions, Mapping) else {}
        started = _epoch(transitions.get("execution-start"))
        finished = _epoch(transitions.get("execution-end")) or _epoch(task.get("completion_t"))
        return started, finished


__all__ = ["SHELL_FUNCTION_COMMAND", "TIMEOUT_EXIT_CODE", "GlobusComputeJobs"]
