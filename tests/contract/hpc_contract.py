"""The contract every :class:`HPCJobPort` adapter must meet.

Subclass :class:`HPCContract` once per adapter and implement :meth:`HPCContract.make_env` to
return an :class:`HPCEnv`: the port plus job specs that succeed, fail or never end there
(a template, a handler, or simulated API responses, whatever the adapter runs).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from pathlib import Path

import pytest

from splash_core.domain.errors import JobError, JobNotFound
from splash_core.domain.models import JobSpec, JobState
from splash_core.ports.hpc import HPCJobPort


class HPCEnv(abc.ABC):
    """One adapter's world, as the HPC suite sees it."""

    facility: str
    fail_exit_code: int
    """The exit code a :meth:`failing` job ends with."""
    timeout_s: float = 30.0
    """How long a wait for a job that should end may take."""

    @property
    @abc.abstractmethod
    def port(self) -> HPCJobPort:
        """The adapter under test."""

    @abc.abstractmethod
    def succeeding(self, name: str, key: str = "") -> JobSpec:
        """A job that exits 0."""

    @abc.abstractmethod
    def failing(self, name: str, message: str) -> JobSpec:
        """A job that prints ``message`` and exits with :attr:`fail_exit_code`."""

    @abc.abstractmethod
    def hanging(self, name: str) -> JobSpec:
        """A job that keeps running until cancelled."""

    def close(self) -> None:  # noqa: B027 - most environments have nothing to release
        """Release what the environment holds."""


class HPCContract(abc.ABC):
    """Tests every HPC job adapter must pass."""

    @abc.abstractmethod
    def make_env(self, tmp_path: Path) -> HPCEnv:
        """A fresh environment for one test."""

    @pytest.fixture
    def env(self, tmp_path: Path) -> Iterator[HPCEnv]:
        """The environment, closed after the test."""
        env = self.make_env(tmp_path)
        yield env
        env.close()

    def test_facility(self, env: HPCEnv) -> None:
        """The port names the facility it runs jobs on."""
        assert env.port.facility == env.facility

    def test_a_job_that_exits_zero_is_completed(self, env: HPCEnv) -> None:
        """COMPLETED, exit code 0, with start and end times."""
        job_id = env.port.submit(env.succeeding("recon-ok"))
        status = env.port.wait(job_id, env.timeout_s)
        assert status.job_id == job_id
        assert status.state is JobState.COMPLETED
        assert status.exit_code == 0
        assert status.succeeded
        assert status.started_at is not None
        assert status.finished_at is not None
        assert status.finished_at >= status.started_at
        assert env.port.status(job_id) == status

    def test_a_job_that_exits_non_zero_is_failed_with_its_log(self, env: HPCEnv) -> None:
        """FAILED, with the exit code and the job's last words in the log tail."""
        job_id = env.port.submit(env.failing("recon-bad", "cannot open /exchange/data"))
        status = env.port.wait(job_id, env.timeout_s)
        assert status.state is JobState.FAILED
        assert status.exit_code == env.fail_exit_code
        assert not status.succeeded
        assert "cannot open /exchange/data" in status.log_tail

    def test_wait_returns_a_running_job_when_time_runs_out(self, env: HPCEnv) -> None:
        """A wait shorter than the job gives back a non-terminal status."""
        job_id = env.port.submit(env.hanging("long"))
        status = env.port.wait(job_id, 0.2)
        assert status.state in (JobState.PENDING, JobState.RUNNING)
        assert not status.state.terminal
        env.port.cancel(job_id)

    def test_cancel_a_running_job(self, env: HPCEnv) -> None:
        """A cancelled job is CANCELLED, stays so, and cancelling again is harmless."""
        job_id = env.port.submit(env.hanging("long"))
        env.port.cancel(job_id)
        assert env.port.status(job_id).state is JobState.CANCELLED
        env.port.cancel(job_id)
        assert env.port.wait(job_id, env.timeout_s).state is JobState.CANCELLED

    def test_cancel_a_finished_job_changes_nothing(self, env: HPCEnv) -> None:
        """Cancelling after the end keeps the final state."""
        job_id = env.port.submit(env.succeeding("quick"))
        assert env.port.wait(job_id, env.timeout_s).state is JobState.COMPLETED
        env.port.cancel(job_id)
        assert env.port.status(job_id).state is JobState.COMPLETED

    def test_same_idempotency_key_same_job(self, env: HPCEnv) -> None:
        """A spec with a known idempotency key returns the existing job."""
        first = env.port.submit(env.succeeding("once", key="recon/scan-1"))
        again = env.port.submit(env.succeeding("once", key="recon/scan-1"))
        other = env.port.submit(env.succeeding("twice", key="recon/scan-2"))
        assert again == first
        assert other != first
        assert env.port.wait(first, env.timeout_s).succeeded

    def test_unknown_job_id(self, env: HPCEnv) -> None:
        """status, wait and cancel of an id nobody issued raise JobNotFound."""
        with pytest.raises(JobNotFound):
            env.port.status("999999")
        with pytest.raises(JobNotFound):
            env.port.wait("999999", 0.1)
        with pytest.raises(JobNotFound):
            env.port.cancel("999999")

    def test_unknown_kind_is_refused(self, env: HPCEnv) -> None:
        """A job kind the facility has no template for is refused at submit."""
        with pytest.raises(JobError, match="no-such-kind"):
            env.port.submit(JobSpec("x", "no-such-kind"))
