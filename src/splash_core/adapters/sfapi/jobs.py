"""NERSC batch jobs through the Superfacility API: :class:`SfapiJobs` implements :class:`HPCJobPort`.

- ``submit`` renders the job kind's template (:mod:`.templates`) with the spec's parameters and
  submits it; a spec whose idempotency key this instance has already submitted gets the same id.
- ``status`` asks squeue first and sacct when the job has left the queue (or has ended, for its
  exit code). Success is only ever COMPLETED with exit code 0; a COMPLETED job with another exit
  code is FAILED. A job in neither is UNKNOWN for ``not_found_grace_s`` after it was submitted
  here - the SFAPI's view lags right after submission - and :class:`JobNotFound` after that
  (at once for a job id this instance did not submit). A job that ended badly carries the tail
  of its log.
- ``wait`` polls with backoff through the injected clock.
- API trouble becomes :class:`TransientJobError` after bounded retries; an expired token is
  renewed once per request (see :mod:`.client`).
"""

from __future__ import annotations

import logging
import re
import shlex
import threading
from datetime import tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from splash_core.adapters._clock import SystemClock as _SystemClock
from splash_core.adapters._polling import poll_job
from splash_core.adapters.sfapi import _slurm
from splash_core.adapters.sfapi.auth import HttpClientFactory, SfapiCredentials, default_http_client_factory
from splash_core.adapters.sfapi.client import SfapiApi
from splash_core.adapters.sfapi.settings import SfapiSettings
from splash_core.adapters.sfapi.templates import log_file, render_job
from splash_core.domain.errors import JobError, JobNotFound, SplashError, TransientJobError
from splash_core.domain.models import JobSpec, JobState, JobStatus
from splash_core.ports.clock import ClockPort
from splash_core.ports.hpc import HPCJobPort

logger = logging.getLogger(__name__)

_JOB_ID = re.compile(r"^\d+$")
_BAD_ENDS = frozenset(
    {
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.TIMEOUT,
        JobState.OUT_OF_MEMORY,
        JobState.NODE_FAIL,
        JobState.PREEMPTED,
    }
)


@attrs.define
class _Submitted:
    job_name: str
    log_dir: str
    at: float


def _zone(name: str) -> tzinfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("time zone %s is unknown here; Slurm times are read as UTC", name)
        return None


class SfapiJobs(HPCJobPort):
    """Slurm jobs on a NERSC machine, submitted and watched through the SFAPI.

    Args:
        settings: machine, job templates, polling and retry bounds.
        credentials: the SFAPI client (read on first use).
        facility: the facility name this port stands for (``nersc``).
        client_factory: builds the ``httpx.Client`` (tests inject a respx transport).
        clock: polling sleeps, the not-found grace window and token expiry go through it.
    """

    def __init__(
        self,
        settings: SfapiSettings,
        credentials: SfapiCredentials,
        *,
        facility: str = "nersc",
        client_factory: HttpClientFactory | None = None,
        clock: ClockPort | None = None,
    ) -> None:
        self._settings = settings
        self._facility = facility
        self._clock = clock or _SystemClock()
        self._api = SfapiApi(
            credentials,
            settings,
            client_factory=client_factory or default_http_client_factory(settings.http_timeout_s),
            clock=self._clock,
        )
        self._zone = _zone(settings.site_timezone)
        self._lock = threading.Lock()
        self._submitted: dict[str, _Submitted] = {}
        self._by_key: dict[str, str] = {}
        self._tails: dict[str, str] = {}
        self._folders: set[str] = set()

    def __repr__(self) -> str:
        return f"SfapiJobs(facility={self._facility}, machine={self._settings.machine})"

    @property
    def facility(self) -> str:
        """The facility name given at construction."""
        return self._facility

    @property
    def settings(self) -> SfapiSettings:
        """The settings this port runs with."""
        return self._settings

    @property
    def clock(self) -> ClockPort:
        """The clock polling goes through."""
        return self._clock

    @property
    def api(self) -> SfapiApi:
        """The SFAPI client (for adapters built on these jobs, like the HPSS archive)."""
        return self._api

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._api.close()

    # --- HPCJobPort --------------------------------------------------------------

    def submit(self, spec: JobSpec) -> str:
        """Render the template of ``spec.kind`` with ``spec.parameters`` and submit it.

        Raises:
            TransientJobError: the SFAPI refused before acting; nothing was submitted, retry later.
            JobError: no template for the kind, bad parameters, sbatch refused the job, or the
                outcome of the submission is unknown (the message says what to check).
            CredentialsError: the SFAPI client's key is missing, unreadable or refused.
        """
        kind = self._settings.kinds.get(spec.kind)
        if kind is None:
            raise JobError(
                f"{self._facility} has no job template for kind {spec.kind!r} (job {spec.name}); "
                f"known kinds: {', '.join(sorted(self._settings.kinds)) or 'none'} - add it under sfapi.kinds"
            )
        if spec.idempotency_key:
            with self._lock:
                existing = self._by_key.get(spec.idempotency_key)
            if existing is not None:
                logger.info("job %s was already submitted as %s; not submitted again", spec.name, existing)
                return existing
        rendered = render_job(spec, kind, self._settings.slurm)
        job_id = self.submit_script(rendered.script, job_name=rendered.job_name, log_dir=rendered.log_dir)
        if spec.idempotency_key:
            with self._lock:
                self._by_key[spec.idempotency_key] = job_id
        return job_id

    def status(self, job_id: str) -> JobStatus:
        """The job's state now (squeue, then sacct); see the module docstring for the rules.

        Raises:
            JobNotFound: neither squeue nor sacct knows the job, and the grace window has passed.
            TransientJobError: the SFAPI could not answer (after bounded retries).
        """
        self._check_id(job_id)
        queued = _slurm.pick_row(self._api.job_rows(job_id, sacct=False), job_id)
        queue_view = _slurm.from_squeue(queued, self._zone) if queued is not None else None
        if queue_view is not None and not queue_view.state.terminal:
            return self._status(job_id, queue_view)
        accounted = _slurm.pick_row(self._api.job_rows(job_id, sacct=True), job_id)
        if accounted is not None:
            view = _slurm.from_sacct(accounted, self._zone)
            if view.state is JobState.COMPLETED and view.exit_code is None:
                return self._missing(job_id, "it is COMPLETED in sacct, which has no exit code for it yet", view)
            return self._status(job_id, view)
        if queue_view is not None:
            if queue_view.state is JobState.COMPLETED:
                return self._missing(job_id, "squeue says COMPLETED but sacct has no record (no exit code)", queue_view)
            return self._status(job_id, queue_view)
        return self._missing(job_id, "neither squeue nor sacct knows it", None)

    def wait(self, job_id: str, timeout_s: float) -> JobStatus:
        """Poll until the job ends or ``timeout_s`` passes; return the last status seen.

        Polls after ``poll_interval_s``, backing off by ``poll_backoff`` up to
        ``poll_max_interval_s``. A status the SFAPI cannot give for a while (transient errors) is
        UNKNOWN and polling goes on until the deadline.

        Raises:
            JobNotFound: the job is unknown beyond the grace window.
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
            where=s.machine,
        )

    def cancel(self, job_id: str) -> None:
        """Cancel the job (a job that has ended already is left alone).

        Raises:
            JobNotFound: Slurm does not know the job and sacct has no record of it.
            JobError: the SFAPI or Slurm refused.
        """
        self._check_id(job_id)
        if self._api.cancel_job(job_id):
            logger.info("cancelled job %s on %s", job_id, self._settings.machine)
            return
        # Slurm said "invalid job id": long finished (and purged from the controller) or never there
        if _slurm.pick_row(self._api.job_rows(job_id, sacct=True), job_id) is None:
            raise JobNotFound(
                f"cannot cancel job {job_id} on {self._settings.machine}: neither Slurm nor sacct knows it"
            )
        logger.info("job %s on %s had already ended; nothing to cancel", job_id, self._settings.machine)

    # --- for adapters built on these jobs ------------------------------------------

    def submit_script(self, script: str, *, job_name: str, log_dir: str) -> str:
        """Submit a rendered batch script whose log is ``<log_dir>/<job_name>-<id>.out``.

        The log folder is created first (once per folder): Slurm cannot start a job whose
        ``--output`` folder is missing, and says so nowhere we could read.
        """
        self._ensure_folder(log_dir)
        job_id = self._api.submit_script(script, job_name=job_name)
        with self._lock:
            self._submitted[job_id] = _Submitted(job_name, log_dir, self._clock.monotonic())
        logger.info("submitted job %s (%s) to %s", job_id, job_name, self._settings.machine)
        return job_id

    def log_path(self, job_id: str, job_name: str | None = None) -> str | None:
        """Where the log of ``job_id`` is (None when its name is not known)."""
        with self._lock:
            known = self._submitted.get(job_id)
        if known is not None:
            return log_file(known.log_dir, known.job_name, job_id)
        if job_name:
            return log_file(self._settings.slurm.log_dir, job_name, job_id)
        return None

    def read_log(self, job_id: str) -> str:
        """The whole log of a job submitted by this instance.

        Raises:
            JobError: the log cannot be read.
            TransientJobError: the SFAPI could not answer.
        """
        path = self.log_path(job_id)
        if path is None:
            raise JobError(f"the log of job {job_id} is unknown here (it was not submitted by this process)")
        return self._api.download_text(path, what=f"reading the log {path} of job {job_id}")

    # --- internals -----------------------------------------------------------------

    def _ensure_folder(self, folder: str) -> None:
        with self._lock:
            if folder in self._folders:
                return
        try:
            self._api.run_command(f"mkdir -p -- {shlex.quote(folder)}", what=f"creating the log folder {folder}")
        except TransientJobError:
            raise
        except SplashError as exc:
            logger.warning("could not create the log folder %s (%s); submitting anyway", folder, exc)
            return
        with self._lock:
            self._folders.add(folder)

    def _check_id(self, job_id: str) -> None:
        if not _JOB_ID.match(job_id or ""):
            raise JobNotFound(f"{job_id!r} is not a Slurm job id of {self._settings.machine}")

    def _status(self, job_id: str, view: _slurm.SlurmView) -> JobStatus:
        status = JobStatus(
            job_id=job_id,
            state=view.state,
            exit_code=view.exit_code,
            reason=view.reason,
            started_at=view.started_at,
            finished_at=view.finished_at,
        )
        if view.state in _BAD_ENDS:
            status = attrs.evolve(status, log_tail=self._log_tail(job_id, view.job_name))
        return status

    def _missing(self, job_id: str, why: str, view: _slurm.SlurmView | None) -> JobStatus:
        with self._lock:
            known = self._submitted.get(job_id)
        waited = self._clock.monotonic() - known.at if known is not None else None
        if waited is not None and waited < self._settings.not_found_grace_s:
            return JobStatus(
                job_id=job_id,
                state=JobState.UNKNOWN,
                reason=f"{why} ({waited:.0f} s after submission); the SFAPI's view of new jobs lags, asking again",
            )
        if view is not None:
            # ended according to squeue, but no exit code ever arrived: never call that a success
            return JobStatus(
                job_id=job_id,
                state=view.state,
                exit_code=None,
                reason=f"{why}; the exit code is unknown",
                started_at=view.started_at,
                finished_at=view.finished_at,
                log_tail=self._log_tail(job_id, view.job_name),
            )
        if waited is None:
            raise JobNotFound(
                f"job {job_id} on {self._settings.machine}: {why}, and it was not submitted from here; check "
                f"`sacct -j {job_id}` at NERSC (a job submitted moments ago elsewhere may need another look)"
            )
        raise JobNotFound(
            f"job {job_id} on {self._settings.machine}: {why}, {waited:.0f} s after it was submitted; check "
            f"`sacct -j {job_id}` at NERSC before resubmitting"
        )

    def _log_tail(self, job_id: str, job_name: str | None) -> str:
        with self._lock:
            cached = self._tails.get(job_id)
        if cached is not None:
            return cached
        path = self.log_path(job_id, job_name)
        if path is None:
            return "(the job's log file is unknown: its name was not reported)"
        lines = self._settings.log_tail_lines
        try:
            tail = self._api.run_command(
                f"tail -n {lines} -- {shlex.quote(path)}", what=f"reading the log {path} of job {job_id}"
            )
        except SplashError as exc:
            logger.warning("could not read the log of job %s: %s", job_id, exc)
            return f"(the log {path} could not be read: {exc})"
        tail = "\n".join(tail.splitlines()[-lines:])
        with self._lock:
            self._tails[job_id] = tail
        return tail


__all__ = ["SfapiJobs"]
