"""SfapiJobs against a simulated SFAPI: submission, squeue/sacct status, failures, retries, tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from splash_core.adapters.sfapi import SfapiJobs
from splash_core.domain.errors import CredentialsError, JobError, JobNotFound, TransientJobError
from splash_core.domain.models import JobSpec, JobState
from tests.fakes.clock import FakeClock
from tests.unit.adapters.sfapi.simulated import SimulatedSfapi


def copy_spec(tmp_path: Path, *, name: str = "copy", exists: bool = True, key: str = "") -> JobSpec:
    source = tmp_path / "in" / "scan 1.h5"
    if exists:
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(b"raw scan")
    return JobSpec(
        name=name,
        kind="echo",
        parameters={"input": str(source), "output": str(tmp_path / "out" / "scan 1.h5")},
        idempotency_key=key,
    )


# --- submit ----------------------------------------------------------------------------


def test_submit_returns_the_slurm_job_id(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """Submitting renders the kind's script and returns the id sbatch gave."""
    job_id = jobs.submit(copy_spec(tmp_path))
    job = sim.job(job_id)
    assert job_id.isdigit()
    assert "#SBATCH --account=als" in job.script
    assert "#SBATCH --qos=realtime" in job.script
    assert job.name == "copy"


def test_unknown_kind_is_refused_without_a_request(sim: SimulatedSfapi, jobs: SfapiJobs) -> None:
    """A kind with no template is a JobError naming the known kinds; nothing is sent."""
    with pytest.raises(JobError, match=r"no job template for kind 'nope'.*known kinds: echo"):
        jobs.submit(JobSpec(name="x", kind="nope"))
    assert sim.requests == []


def test_same_idempotency_key_gives_the_same_job(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """A spec submitted again with the same idempotency key returns the first job id."""
    first = jobs.submit(copy_spec(tmp_path, key="run-1"))
    again = jobs.submit(copy_spec(tmp_path, key="run-1"))
    assert again == first
    assert sim.calls("compute/jobs", "POST") == 1


def test_sbatch_refusal_is_a_job_error(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """sbatch refusing the job (a bad account) is a JobError quoting sbatch."""
    sim.plan_next(sbatch_error="sbatch: error: Batch job submission failed: Invalid account or account/partition")
    with pytest.raises(JobError, match=r"sbatch refused the job: .*Invalid account") as info:
        jobs.submit(copy_spec(tmp_path))
    assert not isinstance(info.value, TransientJobError)


def test_sbatch_temporarily_unavailable_is_transient(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """Slurm saying it is temporarily not accepting jobs is transient."""
    sim.plan_next(sbatch_error="sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying")
    with pytest.raises(TransientJobError, match="temporarily"):
        jobs.submit(copy_spec(tmp_path))


def test_submission_task_is_polled_through_the_clock(
    sim: SimulatedSfapi, jobs: SfapiJobs, clock: FakeClock, tmp_path: Path
) -> None:
    """While the API's submission task is pending the adapter sleeps on the injected clock."""
    sim.task_pending_polls = 3
    jobs.submit(copy_spec(tmp_path))
    assert clock.sleeps == [1.0, 1.0, 1.0]


def test_submission_task_that_never_finishes_is_ambiguous(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """A submission task still pending after the timeout is a JobError that says to check the queue."""
    sim.task_pending_polls = 10_000
    with pytest.raises(JobError, match="look for job name copy in the queue") as info:
        jobs.submit(copy_spec(tmp_path))
    assert not isinstance(info.value, TransientJobError)


def test_submit_throttled_is_retried(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """HTTP 429 and 503 mean nothing was done, so even a submission is retried (within bounds)."""
    sim.fail_next(1, status=429, path="compute/jobs")
    sim.fail_next(1, status=503, path="compute/jobs")
    job_id = jobs.submit(copy_spec(tmp_path))
    assert job_id in sim.jobs
    assert len(sim.jobs) == 1


def test_submit_refused_connection_is_retried(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """A refused connection never reached the API: the submission is retried."""
    sim.fail_next(2, status=0, path="compute/jobs")
    assert jobs.submit(copy_spec(tmp_path)) in sim.jobs


def test_submit_throttled_for_good_is_transient(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """Throttling beyond the retry bound raises TransientJobError; no job exists."""
    sim.fail_next(5, status=429, path="compute/jobs")
    with pytest.raises(TransientJobError, match="throttling or unavailable"):
        jobs.submit(copy_spec(tmp_path))
    assert sim.jobs == {}


@pytest.mark.parametrize("status", [500, 502, 504, -1])
def test_submit_server_error_is_not_repeated(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path, status: int) -> None:
    """A 5xx or a timeout after sending may have submitted the job: one POST, a non-transient JobError."""
    sim.fail_next(1, status=status, path="compute/jobs")
    with pytest.raises(JobError, match="may have been acted on") as info:
        jobs.submit(copy_spec(tmp_path))
    assert not isinstance(info.value, TransientJobError)
    assert sim.calls("compute/jobs", "POST") == 1


def test_forbidden_is_a_credentials_error(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """HTTP 403 (a client without job rights) is a CredentialsError pointing at Iris."""
    sim.fail_next(1, status=403, path="compute/jobs")
    with pytest.raises(CredentialsError, match="Iris"):
        jobs.submit(copy_spec(tmp_path))


# --- status ----------------------------------------------------------------------------


def test_pending_and_running_come_from_squeue(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """While the job is queued, squeue answers and sacct is not asked."""
    sim.plan_next(queue=("PENDING", "RUNNING"), reason="Priority")
    job_id = jobs.submit(copy_spec(tmp_path))
    first = jobs.status(job_id)
    assert (first.state, first.reason) == (JobState.PENDING, "Priority")
    assert jobs.status(job_id).state is JobState.RUNNING
    assert not any(r.url.params.get("sacct") == "true" for r in sim.requests)


def test_finished_job_comes_from_sacct_with_exit_code(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """Once out of squeue, sacct gives the final state and exit code; success needs both."""
    sim.plan_next(queue=())
    job_id = jobs.submit(copy_spec(tmp_path))
    status = jobs.status(job_id)
    assert status.state is JobState.COMPLETED
    assert status.exit_code == 0
    assert status.succeeded
    assert status.log_tail == ""
    assert (tmp_path / "out" / "scan 1.h5").read_bytes() == b"raw scan"
    assert status.started_at is not None
    assert status.finished_at is not None


def test_failed_script_is_failed_with_log_tail(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """A script whose container fails ends FAILED with its exit code and the tail of its log."""
    sim.plan_next(queue=())
    job_id = jobs.submit(copy_spec(tmp_path, exists=False))
    status = jobs.status(job_id)
    assert status.state is JobState.FAILED
    assert status.exit_code == 1
    assert not status.succeeded
    assert "No such file or directory" in status.log_tail
    assert f"job {job_id} started" in status.log_tail
    assert "container exited with status 1" in status.log_tail


@pytest.mark.parametrize(
    ("slurm_state", "exit_code", "state", "code"),
    [
        ("TIMEOUT", "0:15", JobState.TIMEOUT, 143),
        ("OUT_OF_MEMORY", "0:125", JobState.OUT_OF_MEMORY, 253),
        ("NODE_FAIL", "0:0", JobState.NODE_FAIL, 0),
        ("PREEMPTED", "0:15", JobState.PREEMPTED, 143),
        ("CANCELLED by 98765", "0:15", JobState.CANCELLED, 143),
        ("FAILED", "2:0", JobState.FAILED, 2),
        ("COMPLETED", "1:0", JobState.FAILED, 1),
    ],
)
def test_bad_ends_carry_state_exit_code_and_log(
    sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path, slurm_state: str, exit_code: str, state: JobState, code: int
) -> None:
    """Every way a job can end badly is reported as such, never as success, with the log tail."""
    log = "step 1 ok\nslurmstepd: error: *** JOB CANCELLED DUE TO TIME LIMIT or the like ***\n"
    sim.plan_next(queue=("RUNNING",), state=slurm_state, exit_code=exit_code, run=False, log=log)
    job_id = jobs.submit(copy_spec(tmp_path))
    assert jobs.status(job_id).state is JobState.RUNNING
    status = jobs.status(job_id)
    assert status.state is state
    assert status.exit_code == code
    assert not status.succeeded
    assert "slurmstepd: error" in status.log_tail
    assert status.job_id == job_id


def test_completed_nonzero_exit_says_why(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """COMPLETED with exit code 1:0 is FAILED and the reason says Slurm called it COMPLETED."""
    sim.plan_next(queue=(), state="COMPLETED", exit_code="1:0", run=False, log="oops\n")
    status = jobs.status(jobs.submit(copy_spec(tmp_path)))
    assert status.state is JobState.FAILED
    assert status.reason is not None
    assert "COMPLETED" in status.reason
    assert "1:0" in status.reason


def test_log_that_cannot_be_read_does_not_hide_the_failure(
    sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path
) -> None:
    """When the log cannot be read, the status still says FAILED and the tail says why it is missing."""
    sim.plan_next(queue=(), state="FAILED", exit_code="3:0", run=False, log=None)
    status = jobs.status(jobs.submit(copy_spec(tmp_path)))
    assert status.state is JobState.FAILED
    assert "could not be read" in status.log_tail


def test_log_tail_is_read_once(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """Asking again about a failed job does not read its log again."""
    sim.plan_next(queue=(), state="FAILED", exit_code="3:0", run=False, log="boom\n")
    job_id = jobs.submit(copy_spec(tmp_path))
    jobs.status(job_id)
    jobs.status(job_id)
    tails = [c for c in sim.commands if c.startswith("tail ")]
    assert len(tails) == 1
    assert tails[0].startswith("tail -n 40 -- ")


def test_log_folder_is_created_once(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """Before the first submission the log folder is created (Slurm cannot start without it), once."""
    jobs.submit(copy_spec(tmp_path, name="one"))
    jobs.submit(copy_spec(tmp_path, name="two"))
    mkdirs = [c for c in sim.commands if c.startswith("mkdir ")]
    assert mkdirs == [f"mkdir -p -- {jobs.settings.slurm.log_dir}"]


def test_not_found_right_after_submit_is_unknown_then_found(
    sim: SimulatedSfapi, jobs: SfapiJobs, clock: FakeClock, tmp_path: Path
) -> None:
    """A job the API does not show yet is UNKNOWN (not an error) and is followed to its end."""
    sim.plan_next(hidden_polls=3)
    job_id = jobs.submit(copy_spec(tmp_path))
    first = jobs.status(job_id)
    assert first.state is JobState.UNKNOWN
    assert first.reason is not None
    assert "lags" in first.reason
    final = jobs.wait(job_id, 600)
    assert final.state is JobState.COMPLETED
    assert final.succeeded


def test_not_found_after_the_grace_window_is_job_not_found(
    sim: SimulatedSfapi, jobs: SfapiJobs, clock: FakeClock, tmp_path: Path
) -> None:
    """A job still unknown after the grace window raises JobNotFound naming it."""
    sim.plan_next(hidden_polls=1000)
    job_id = jobs.submit(copy_spec(tmp_path))
    assert jobs.status(job_id).state is JobState.UNKNOWN
    clock.advance(121)
    with pytest.raises(JobNotFound, match=f"job {job_id} on perlmutter: neither squeue nor sacct knows it"):
        jobs.status(job_id)


def test_job_not_submitted_here_is_not_found_at_once(jobs: SfapiJobs) -> None:
    """A job id this instance did not submit and Slurm does not know is JobNotFound right away."""
    with pytest.raises(JobNotFound, match="job 999 on perlmutter: neither squeue nor sacct knows it, and it was not"):
        jobs.status("999")


def test_cancel_of_unknown_job_is_not_found(jobs: SfapiJobs) -> None:
    """Cancelling an id neither Slurm nor sacct knows raises JobNotFound."""
    with pytest.raises(JobNotFound, match="cannot cancel job 999"):
        jobs.cancel("999")


def test_status_of_a_non_slurm_id_is_not_found(sim: SimulatedSfapi, jobs: SfapiJobs) -> None:
    """An id that is not a Slurm job id is JobNotFound at once, without a request."""
    with pytest.raises(JobNotFound, match="not a Slurm job id"):
        jobs.status("12; rm -rf /")
    assert sim.requests == []


def test_status_api_outage_is_retried(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """A 502 and a 503 on status queries are retried and the status still arrives."""
    job_id = jobs.submit(copy_spec(tmp_path))
    sim.fail_next(1, status=502, path="compute/jobs")
    sim.fail_next(1, status=503, path="compute/jobs")
    assert jobs.status(job_id).state is JobState.PENDING


def test_status_api_down_is_transient(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """An API that keeps failing gives TransientJobError (after bounded retries) naming the job."""
    job_id = jobs.submit(copy_spec(tmp_path))
    sim.fail_next(3, status=500, path="compute/jobs")
    with pytest.raises(TransientJobError, match=f"job {job_id}"):
        jobs.status(job_id)


def test_expired_token_is_refreshed_once(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """A 401 makes the adapter fetch a new token and repeat the request once."""
    job_id = jobs.submit(copy_spec(tmp_path))
    sim.expire_tokens()
    assert jobs.status(job_id).state is JobState.PENDING
    assert sim.tokens_issued == 2


def test_token_refused_twice_is_a_credentials_error(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """When even a fresh token is refused, the error is about credentials, not retried forever."""
    job_id = jobs.submit(copy_spec(tmp_path))
    sim.fail_next(2, status=401, path="compute/jobs")
    with pytest.raises(CredentialsError, match="freshly issued token"):
        jobs.status(job_id)
    assert sim.tokens_issued == 2


# --- wait and cancel --------------------------------------------------------------------


def test_wait_backs_off_through_the_clock(
    sim: SimulatedSfapi, jobs: SfapiJobs, clock: FakeClock, tmp_path: Path
) -> None:
    """Polls start at poll_interval_s and grow by poll_backoff up to poll_max_interval_s."""
    sim.plan_next(queue=("PENDING",) * 6)
    status = jobs.wait(jobs.submit(copy_spec(tmp_path)), 3600)
    assert status.succeeded
    assert clock.sleeps == [5.0, 7.5, 11.25, 16.875, 25.3125, 30.0]


def test_wait_returns_the_last_status_on_timeout(
    sim: SimulatedSfapi, jobs: SfapiJobs, clock: FakeClock, tmp_path: Path
) -> None:
    """A job still running at the deadline is returned as it was last seen."""
    sim.plan_next(queue=("RUNNING",) * 100)
    status = jobs.wait(jobs.submit(copy_spec(tmp_path)), 60)
    assert status.state is JobState.RUNNING
    assert clock.monotonic() == pytest.approx(60)


def test_wait_rides_out_a_status_outage(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """Transient status errors during a wait are UNKNOWN polls, not failures."""
    sim.plan_next(queue=("PENDING",))
    job_id = jobs.submit(copy_spec(tmp_path))
    sim.fail_next(3, status=503, path="compute/jobs")
    assert jobs.wait(job_id, 600).succeeded


def test_cancel_a_running_job(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """A cancelled job ends CANCELLED."""
    sim.plan_next(queue=("RUNNING",) * 10)
    job_id = jobs.submit(copy_spec(tmp_path))
    jobs.cancel(job_id)
    status = jobs.status(job_id)
    assert status.state is JobState.CANCELLED


def test_cancel_a_finished_job_is_harmless(sim: SimulatedSfapi, jobs: SfapiJobs, tmp_path: Path) -> None:
    """Cancelling a job that has ended is not an error and changes nothing."""
    sim.plan_next(queue=())
    job_id = jobs.submit(copy_spec(tmp_path))
    assert jobs.status(job_id).succeeded
    jobs.cancel(job_id)
    assert jobs.status(job_id).succeeded


def test_facility_and_repr(jobs: SfapiJobs) -> None:
    """The port names its facility; its repr names the machine and nothing secret."""
    assert jobs.facility == "nersc"
    assert repr(jobs) == "SfapiJobs(facility=nersc, machine=perlmutter)"
