"""JobRunner: a job succeeds only when it ends COMPLETED, exit 0, with every output present."""

from __future__ import annotations

import json

import pytest

from splash_core.domain.errors import (
    JobError,
    JobFailed,
    JobNotFound,
    JobOutputsMissing,
    JobTimeout,
    UnknownEndpoint,
)
from splash_core.domain.events import JobFinished, StepRecord, StepState
from splash_core.domain.models import JobSpec, JobState, OutputSpec
from splash_core.domain.paths import RelPath
from splash_core.domain.services.jobs import JobRunner
from tests.fakes import FakeFacility, FakeHPC

OUT = "nersc832_alsdev_pscratch_scratch"


@pytest.fixture
def fac() -> FakeFacility:
    return FakeFacility()


@pytest.fixture
def hpc(fac: FakeFacility) -> FakeHPC:
    hpc = fac.hpc["nersc"]
    hpc.register_writer("reconstruct", fac.endpoints)
    return hpc


def runner(fac: FakeFacility, hpc: FakeHPC, **kwargs: float) -> JobRunner:
    return JobRunner(hpc, fac.storage, fac.ledger, fac.clock, fac.endpoints, poll_interval_s=10, **kwargs)


def spec(key: str = "run-1/reconstruct", outputs: tuple[str, ...] = ("scan/recscan/slice_0000.tif",)) -> JobSpec:
    return JobSpec(
        name="reconstruct scan",
        kind="reconstruct",
        parameters={"input": "/raw/scan.h5"},
        expected_outputs=tuple(OutputSpec(OUT, RelPath.parse(o)) for o in outputs),
        time_limit_s=600,
        idempotency_key=key,
    )


def test_success_records_a_finished_event(fac: FakeFacility, hpc: FakeHPC) -> None:
    """A job that completes with exit 0 and writes its outputs succeeds and is recorded."""
    status = runner(fac, hpc).run(spec(), inputs=("scan.h5",))
    assert status.succeeded
    [event] = fac.ledger.of_type(JobFinished)
    assert (event.state, event.exit_code, event.inputs) == (JobState.COMPLETED, 0, ("scan.h5",))
    assert event.outputs == ("scan/recscan/slice_0000.tif",)
    assert fac.ledger.step("run-1/reconstruct").state is StepState.DONE


def test_folder_output_counts_when_it_holds_a_file(fac: FakeFacility, hpc: FakeHPC) -> None:
    """A folder output is present when at least one file lies below it."""

    def write(job: JobSpec) -> int:
        fac.put(OUT, "scan/recscan/slice_0000.tif", b"x")
        return 0

    hpc.register("reconstruct", write)
    assert runner(fac, hpc).run(spec(outputs=("scan/recscan",))).succeeded


def test_completed_with_exit_code_1_fails(fac: FakeFacility, hpc: FakeHPC) -> None:
    """COMPLETED with a non-zero exit code is a failure, not a success."""
    hpc.finish_next(JobState.COMPLETED, exit_code=1)
    with pytest.raises(JobFailed, match="exit code 1"):
        runner(fac, hpc).run(spec())
    assert fac.ledger.of_type(JobFinished)[0].exit_code == 1
    assert fac.ledger.step("run-1/reconstruct").state is StepState.FAILED


@pytest.mark.parametrize("state", [JobState.FAILED, JobState.TIMEOUT, JobState.OUT_OF_MEMORY])
def test_bad_final_states_fail_with_job_id_and_log_tail(fac: FakeFacility, hpc: FakeHPC, state: JobState) -> None:
    """A job ending FAILED, TIMEOUT or OUT_OF_MEMORY fails naming the job and showing its log tail."""

    def crash(job: JobSpec) -> int:
        raise RuntimeError("segfault in gridrec")

    hpc.register("reconstruct", crash)
    hpc.finish_next(state, exit_code=137)
    with pytest.raises(JobFailed) as info:
        runner(fac, hpc).run(spec())
    message = str(info.value)
    assert "nersc-job-0001" in message
    assert state.value in message
    assert "segfault in gridrec" in message
    assert fac.ledger.of_type(JobFinished)[0].state is state


def test_not_found_right_after_submit_is_asked_again(fac: FakeFacility, hpc: FakeHPC) -> None:
    """'Job not found' within the grace window is a lagging status cache; the job then completes."""
    hpc.lose_status_for(3)
    assert runner(fac, hpc).run(spec()).succeeded


def test_not_found_after_the_grace_window_fails(fac: FakeFacility, hpc: FakeHPC) -> None:
    """A job the service still does not know after the grace window fails, naming the job id."""
    hpc.lose_status_for(1000)
    with pytest.raises(JobNotFound, match="nersc-job-0001"):
        runner(fac, hpc, not_found_grace_s=60).run(spec())
    assert fac.ledger.of_type(JobFinished)[0].state is JobState.UNKNOWN


def test_outputs_missing_fails(fac: FakeFacility, hpc: FakeHPC) -> None:
    """A job that says it succeeded but wrote nothing fails naming the missing output."""
    hpc.register("reconstruct", lambda job: 0)
    with pytest.raises(JobOutputsMissing, match="scan/recscan/slice_0000.tif on " + OUT):
        runner(fac, hpc).run(spec())
    assert fac.ledger.step("run-1/reconstruct").state is StepState.FAILED


def test_timeout_cancels_the_job(fac: FakeFacility, hpc: FakeHPC) -> None:
    """A job running past its limit plus slack is cancelled and the run fails."""
    hpc.hang_next()
    with pytest.raises(JobTimeout, match="nersc-job-0001"):
        runner(fac, hpc, timeout_slack_s=60).run(spec())
    assert hpc.cancelled == ["nersc-job-0001"]
    assert fac.ledger.of_type(JobFinished)[0].state is JobState.CANCELLED


def test_transient_submit_errors_are_retried(fac: FakeFacility, hpc: FakeHPC) -> None:
    """Transient submission failures are retried, then the job runs once."""
    hpc.fail_next(2, transient=True)
    assert runner(fac, hpc).run(spec()).succeeded
    assert hpc.jobs_created == 1


def test_refused_submission_fails_without_retry(fac: FakeFacility, hpc: FakeHPC) -> None:
    """A permanent submission error is raised at once."""
    hpc.fail_next(1, transient=False)
    with pytest.raises(JobError, match="refused"):
        runner(fac, hpc).run(spec())
    assert hpc.jobs_created == 0


def test_done_job_is_not_resubmitted(fac: FakeFacility, hpc: FakeHPC) -> None:
    """A job whose idempotency key is recorded DONE returns its result without a new submission."""
    first = runner(fac, hpc).run(spec())
    again = runner(fac, hpc).run(spec())
    assert again.job_id == first.job_id
    assert again.succeeded
    assert hpc.submissions == 1


def test_failed_job_is_rerun_as_a_new_job(fac: FakeFacility, hpc: FakeHPC) -> None:
    """After a failure, running the same key again submits a fresh job."""
    hpc.finish_next(JobState.FAILED, exit_code=2)
    with pytest.raises(JobFailed):
        runner(fac, hpc).run(spec())
    assert runner(fac, hpc).run(spec()).job_id == "nersc-job-0002"


def test_unknown_output_endpoint_submits_nothing(fac: FakeFacility, hpc: FakeHPC) -> None:
    """An expected output on an unknown endpoint is refused before submission."""
    bad = JobSpec(name="j", kind="reconstruct", expected_outputs=(OutputSpec("nowhere", RelPath("a")),))
    with pytest.raises(UnknownEndpoint, match="nowhere"):
        runner(fac, hpc).run(bad)
    assert hpc.submissions == 0


def test_outputs_that_cannot_be_checked_fail_the_job(fac: FakeFacility, hpc: FakeHPC) -> None:
    """When storage cannot say whether outputs exist, the job is not counted a success."""
    fac.storage.fail_next(1, transient=False, op="stat")
    with pytest.raises(JobOutputsMissing, match="could not be checked"):
        runner(fac, hpc).run(spec())
    assert fac.ledger.of_type(JobFinished)[0].state is JobState.COMPLETED


def test_interrupted_run_resumes_the_job_in_flight(fac: FakeFacility, hpc: FakeHPC) -> None:
    """A run that died while its job was in flight picks that job up instead of submitting another."""
    job_id = hpc.submit(spec(key="k"))
    detail = json.dumps({"job_id": job_id, "attempt": "1"})
    fac.ledger.record_step(StepRecord("k", StepState.STARTED, fac.clock.now(), detail))
    status = runner(fac, hpc).run(spec(key="k"))
    assert status.job_id == job_id
    assert status.succeeded
    assert hpc.jobs_created == 1
