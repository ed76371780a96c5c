"""HPC jobs as local subprocesses: the local stand-in for Slurm at NERSC (or any facility).

A job is a bash script shaped like a Slurm batch script (``#SBATCH`` lines stay as comments),
made from the template for its ``JobSpec.kind`` with :class:`string.Template`: ``$name``
placeholders take the spec's parameters, each shell-quoted with :func:`shlex.quote` (so write
them bare, ``--input $raw_file``, never inside quotes of your own); ``$$`` is a literal ``$``
(so bash variables are written ``$${HOME}`` or ``$$HOME``). ``$job_id``,
``$job_name`` and ``$job_dir`` (the log folder) are always available.

Each job runs in its own process group, in the log folder (by default ``jobs/`` beside the
database), with stdout and stderr in ``<id>.log``.
A small wrapper writes the script's exit code to ``<id>.exit``, so the outcome survives the
Python process; the job's state lives in the workspace database. A job whose process vanished
without an exit code is FAILED with reason "lost".
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import sqlite3
import string
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path

import attrs

from splash_core.adapters.local._proc import is_running, process_start
from splash_core.adapters.local.clock import SystemClock
from splash_core.adapters.local.database import DatabaseLike, as_database
from splash_core.domain.errors import JobError, JobNotFound
from splash_core.domain.models import JobSpec, JobState, JobStatus
from splash_core.ports.clock import ClockPort
from splash_core.ports.hpc import HPCJobPort

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 40
_LOG_TAIL_BYTES = 64 * 1024

# runs the job script, then records its exit code atomically where a later process can read it
_WRAPPER = 'bash "$1"; code=$?; printf "%s\\n" "$code" > "$2.tmp" && mv -f "$2.tmp" "$2"; exit "$code"'

_ACTIVE = (JobState.PENDING.value, JobState.RUNNING.value)


@attrs.frozen
class _Job:
    job_id: str
    state: JobState
    pid: int | None
    pid_start: str | None
    exit_code: int | None
    reason: str | None
    time_limit_s: float
    started_at: datetime | None
    finished_at: datetime | None
    started_epoch: float | None
    log_path: Path
    exit_path: Path


def _read_exit_code(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of the log at ``path`` ("" when there is none yet)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _LOG_TAIL_BYTES))
            data = f.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


class LocalJobs(HPCJobPort):
    """Run job scripts as subprocesses and track them in the local SQLite database.

    Args:
        db: the database (or its file) with the job table.
        templates: job kind → script template (see the module docstring).
        log_dir: where scripts, logs and exit-code files go (default: ``jobs/`` beside the database).
        facility: the facility name this stands in for (e.g. ``"nersc"``).
        clock: for the start and end times reported.
        env: extra environment variables for every job.
        kill_grace_s: seconds between SIGTERM and SIGKILL when a job is cancelled or times out.
    """

    def __init__(
        self,
        db: DatabaseLike,
        templates: Mapping[str, str],
        *,
        log_dir: str | os.PathLike[str] | None = None,
        facility: str = "local",
        clock: ClockPort | None = None,
        env: Mapping[str, str] | None = None,
        kill_grace_s: float = 5.0,
    ) -> None:
        self._db = as_database(db)
        self._log_dir = Path(log_dir).absolute() if log_dir is not None else self._db.path.absolute().parent / "jobs"
        self._templates = dict(templates)
        self._facility = facility
        self._clock = clock or SystemClock()
        self._env = dict(env or {})
        self._kill_grace_s = kill_grace_s
        self._lock = threading.Lock()
        self._monitored: dict[str, threading.Event] = {}

    @property
    def facility(self) -> str:
        """The facility name given to the constructor."""
        return self._facility

    # --- port ------------------------------------------------------------

    def submit(self, spec: JobSpec) -> str:
        """Render the template for ``spec.kind``, start it, and return the job id.

        A non-empty ``spec.idempotency_key`` seen before returns that job's id without
        starting another.

        Raises:
            JobError: no template for the kind, a placeholder without a parameter, or the
                process could not be started.
        """
        template = self._templates.get(spec.kind)
        if template is None:
            known = ", ".join(sorted(self._templates)) or "none"
            raise JobError(
                f"facility {self._facility} has no job template for kind {spec.kind!r} (job {spec.name}); "
                f"known kinds: {known}"
            )
        key = spec.idempotency_key or None
        jobs_dir = self._log_dir
        with self._db_errors(f"submit job {spec.name}"), self._db.transaction() as conn:
            if key is not None:
                row = conn.execute(
                    "SELECT job_id FROM jobs WHERE facility = ? AND idempotency_key = ?", (self._facility, key)
                ).fetchone()
                if row is not None:
                    return str(row[0])
            number = conn.execute("SELECT coalesce(max(n), 0) + 1 FROM jobs").fetchone()[0]
            job_id = str(number)
            script_path = jobs_dir / f"{job_id}.sh"
            script = self._render(template, spec, job_id)
            conn.execute(
                "INSERT INTO jobs (n, job_id, idempotency_key, facility, name, kind, state, time_limit_s, "
                "script_path, log_path, exit_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    number,
                    job_id,
                    key,
                    self._facility,
                    spec.name,
                    spec.kind,
                    JobState.PENDING.value,
                    spec.time_limit_s,
                    str(script_path),
                    str(jobs_dir / f"{job_id}.log"),
                    str(jobs_dir / f"{job_id}.exit"),
                ),
            )
        self._launch(job_id, spec, script, script_path)
        return job_id

    def status(self, job_id: str) -> JobStatus:
        """The job's state, exit code, reason, times and the last lines of its log.

        Raises:
            JobNotFound: no job has this id.
        """
        job = self._load(job_id)
        if not job.state.terminal and job_id not in self._monitored:
            job = self._check_unmonitored(job)
        return JobStatus(
            job_id=job.job_id,
            state=job.state,
            exit_code=job.exit_code,
            reason=job.reason,
            log_tail=log_tail(job.log_path),
            started_at=job.started_at,
            finished_at=job.finished_at,
        )

    def wait(self, job_id: str, timeout_s: float) -> JobStatus:
        """Wait until the job ends or ``timeout_s`` passes; the last status seen.

        Raises:
            JobNotFound: no job has this id.
        """
        done = self._monitored.get(job_id)
        if done is not None:
            done.wait(max(0.0, timeout_s))
            return self.status(job_id)
        deadline = time.monotonic() + max(0.0, timeout_s)
        delay = 0.01
        while True:
            status = self.status(job_id)
            remaining = deadline - time.monotonic()
            if status.state.terminal or remaining <= 0:
                return status
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.5)

    def cancel(self, job_id: str) -> None:
        """Cancel the job if it is still pending or running (its whole process group is killed).

        Raises:
            JobNotFound: no job has this id.
        """
        job = self._load(job_id)
        if job.state.terminal:
            return
        if self._end(job_id, JobState.CANCELLED, "cancelled"):
            self._kill(job)

    def active_jobs(self) -> tuple[str, ...]:
        """The ids of this facility's jobs not yet in a terminal state, oldest first."""
        with self._db_errors("list active jobs"), self._db.read() as conn:
            rows = conn.execute(
                "SELECT job_id FROM jobs WHERE facility = ? AND state IN (?, ?) ORDER BY n",
                (self._facility, *_ACTIVE),
            ).fetchall()
        return tuple(str(job_id) for (job_id,) in rows)

    # --- internals ---------------------------------------------------------

    @contextlib.contextmanager
    def _db_errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise JobError(f"local jobs ({self._facility}): cannot {what}: database {self._db.path}: {exc}") from exc

    def _render(self, template: str, spec: JobSpec, job_id: str) -> str:
        values = {key: shlex.quote(value) for key, value in spec.parameters.items()}
        values.update(
            job_id=shlex.quote(job_id),
            job_name=shlex.quote(spec.name),
            job_dir=shlex.quote(str(self._log_dir)),
        )
        try:
            return string.Template(template).substitute(values)
        except KeyError as exc:
            raise JobError(
                f"the {spec.kind!r} job template on {self._facility} uses ${exc.args[0]} but job {spec.name} "
                f"has no parameter {exc.args[0]!r}; add it to JobSpec.parameters (write $$ for a literal $)"
            ) from exc
        except ValueError as exc:
            raise JobError(
                f"the {spec.kind!r} job template on {self._facility} is malformed: {exc}; write $$ for a literal $"
            ) from exc

    def _launch(self, job_id: str, spec: JobSpec, script: str, script_path: Path) -> None:
        job = self._load(job_id)
        try:
            script_path.parent.mkdir(parents=True, exist_ok=True)
            script_path.write_text(script)
            with contextlib.suppress(FileNotFoundError):
                job.exit_path.unlink()
            env = {
                **os.environ,
                **self._env,
                "SPLASH_JOB_ID": job_id,
                "SPLASH_JOB_NAME": spec.name,
                "SPLASH_JOB_DIR": str(self._log_dir),
            }
            with open(job.log_path, "wb") as log:
                process = subprocess.Popen(
                    ["bash", "-c", _WRAPPER, "splash-job", str(script_path), str(job.exit_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=script_path.parent,
                    env=env,
                    start_new_session=True,
                )
        except OSError as exc:
            self._end(job_id, JobState.FAILED, f"could not start: {exc}")
            raise JobError(f"job {job_id} ({spec.name}) on {self._facility} could not start: {exc}") from exc
        done = threading.Event()
        with self._lock:
            self._monitored[job_id] = done
        with self._db_errors(f"record the start of job {job_id}"), self._db.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET state = ?, pid = ?, pid_start = ?, started_at = ?, started_epoch = ? "
                "WHERE job_id = ? AND state = ?",
                (
                    JobState.RUNNING.value,
                    process.pid,
                    process_start(process.pid),
                    self._clock.now().isoformat(),
                    time.time(),
                    job_id,
                    JobState.PENDING.value,
                ),
            )
        logger.info(
            "job %s (%s, %s) started on %s as pid %d", job_id, spec.name, spec.kind, self._facility, process.pid
        )
        threading.Thread(
            target=self._monitor,
            args=(job_id, process, spec.time_limit_s, done),
            name=f"splash-job-{job_id}",
            daemon=True,  # the job outlives us if need be; its exit code goes to the .exit file
        ).start()

    def _monitor(self, job_id: str, process: subprocess.Popen[bytes], limit_s: float, done: threading.Event) -> None:
        try:
            try:
                returncode = process.wait(timeout=limit_s)
            except subprocess.TimeoutExpired:
                if self._end(job_id, JobState.TIMEOUT, f"time limit of {limit_s:g} s reached"):
                    self._kill(self._load(job_id))
                returncode = process.wait()
            self._settle(self._load(job_id), returncode)
        except Exception:
            logger.exception("monitoring job %s failed", job_id)
        finally:
            with self._lock:
                self._monitored.pop(job_id, None)
            done.set()

    def _check_unmonitored(self, job: _Job) -> _Job:
        """Bring a job run by another (or an ended) process up to date."""
        if job.pid is None:  # its submitter has not started the process yet
            return job
        if job.exit_path.exists() or not is_running(job.pid, job.pid_start):
            self._settle(job, None)
        elif (
            job.started_epoch is not None
            and time.time() > job.started_epoch + job.time_limit_s
            and self._end(job.job_id, JobState.TIMEOUT, f"time limit of {job.time_limit_s:g} s reached")
        ):
            self._kill(job)
        return self._load(job.job_id)

    def _settle(self, job: _Job, returncode: int | None) -> None:
        exit_code = _read_exit_code(job.exit_path)
        if exit_code == 0:
            self._end(job.job_id, JobState.COMPLETED, None, exit_code)
        elif exit_code is not None:
            self._end(job.job_id, JobState.FAILED, f"exit code {exit_code}", exit_code)
        elif returncode is not None and returncode < 0:
            self._end(job.job_id, JobState.FAILED, f"killed by signal {-returncode}")
        else:
            self._end(job.job_id, JobState.FAILED, "lost: the job's process ended without recording an exit code")

    def _end(self, job_id: str, state: JobState, reason: str | None, exit_code: int | None = None) -> bool:
        """Record a terminal state unless one is recorded already; whether this call recorded it."""
        with self._db_errors(f"record the end of job {job_id}"), self._db.transaction() as conn:
            cur = conn.execute(
                "UPDATE jobs SET state = ?, reason = ?, exit_code = ?, finished_at = ? "
                "WHERE job_id = ? AND state IN (?, ?)",
                (state.value, reason, exit_code, self._clock.now().isoformat(), job_id, *_ACTIVE),
            )
        if cur.rowcount:
            logger.info(
                "job %s on %s ended %s%s", job_id, self._facility, state.value, f" ({reason})" if reason else ""
            )
        return cur.rowcount > 0

    def _kill(self, job: _Job) -> None:
        """SIGTERM the job's process group, then SIGKILL whatever is left after the grace period."""
        if job.pid is None or not is_running(job.pid, job.pid_start):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job.pid, signal.SIGTERM)
        done = self._monitored.get(job.job_id)
        deadline = time.monotonic() + self._kill_grace_s
        while time.monotonic() < deadline:
            if done is not None and done.is_set():
                return
            if not _group_alive(job.pid):
                return
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job.pid, signal.SIGKILL)

    def _load(self, job_id: str) -> _Job:
        with self._db_errors(f"read job {job_id}"), self._db.read() as conn:
            row = conn.execute(
                "SELECT job_id, state, pid, pid_start, exit_code, reason, time_limit_s, started_at, finished_at, "
                "started_epoch, log_path, exit_path FROM jobs WHERE job_id = ? AND facility = ?",
                (job_id, self._facility),
            ).fetchone()
        if row is None:
            raise JobNotFound(f"no job {job_id!r} on local facility {self._facility} ({self._db.path})")
        return _Job(
            job_id=row[0],
            state=JobState(row[1]),
            pid=row[2],
            pid_start=row[3],
            exit_code=row[4],
            reason=row[5],
            time_limit_s=row[6],
            started_at=datetime.fromisoformat(row[7]) if row[7] else None,
            finished_at=datetime.fromisoformat(row[8]) if row[8] else None,
            started_epoch=row[9],
            log_path=Path(row[10]),
            exit_path=Path(row[11]),
        )


def _group_alive(pgid: int) -> bool:
    """Whether any live (not zombie) process is left in the group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg(…, 0) also succeeds for a leader that is only a zombie waiting to be reaped
    return process_start(pgid) is not None or _any_in_group(pgid)


def _any_in_group(pgid: int) -> bool:
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    for entry in entries:
        if not entry.isdecimal():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if fields[0] != b"Z" and int(fields[2]) == pgid:
            return True
    return False
