"""GlobusComputeJobs over a stand-in client: submission, task states, failures, retries, cancel."""

from __future__ import annotations

import shlex
import uuid
from pathlib import Path

import pytest
from globus_compute_sdk import ShellFunction

from splash_core.adapters.globus_compute import GlobusComputeCredentials, GlobusComputeJobs
from splash_core.adapters.globus_compute.jobs import SHELL_FUNCTION_COMMAND
from splash_core.domain.errors import CredentialsError, JobError, JobNotFound, TransientJobError
from splash_core.domain.models import JobSpec, JobState
from tests.fakes.clock import EPOCH, FakeClock
from tests.unit.adapters.globus_compute.conftest import make_jobs
from tests.unit.adapters.globus_compute.simulated import (
    ENDPOINT_ID,
    SimulatedCompute,
    api_error,
    network_error,
)


def echo(name: str = "echo", key: str = "", **parameters: str) -> JobSpec:
    values = {"input": "/eagle/raw/scan 1.h5", "output": "/eagle/scratch/scan 1", **parameters}
    return JobSpec(name=name, kind="echo", parameters=values, idempotency_key=key)


def failing(message: str = "cannot open /exchange/data") -> JobSpec:
    return JobSpec(name="bad", kind="fail", parameters={"input": "/eagle/raw/x.h5", "message": message})


# --- submit ----------------------------------------------------------------------------


def test_submit_returns_the_task_id(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """A submission is one task on the configured endpoint; the job id is its task id."""
    task_id = jobs.submit(echo())
    assert uuid.UUID(task_id)
    (sent,) = sim.submissions
    assert sent.endpoint_id == ENDPOINT_ID
    assert set(sent.kwargs) == {"command"}
    wrapper = shlex.split(sent.kwargs["command"])
    assert wrapper[:5] == ["timeout", "--kill-after=60s", "3600s", "bash", "-c"]
    assert wrapper[5] == "printf '%s\\n' '/eagle/raw/scan 1.h5' '/eagle/scratch/scan 1'"


def test_the_client_is_built_on_first_use_only(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """Building the port contacts nothing; the first call builds the client, once."""
    assert sim.factory_calls == []
    jobs.submit(echo("a"))
    jobs.submit(echo("b"))
    assert len(sim.factory_calls) == 1


def test_the_shell_function_is_registered_once(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """The ShellFunction with command {command} is registered on the first submission only."""
    jobs.submit(echo("a"))
    jobs.submit(echo("b"))
    assert sim.count("register_function") == 1
    (function,) = sim.functions.values()
    assert isinstance(function, ShellFunction)
    assert function.cmd == SHELL_FUNCTION_COMMAND
    assert function.return_dict


def test_a_configured_function_id_is_used_without_registering(
    sim: SimulatedCompute, clock: FakeClock, credentials: GlobusComputeCredentials
) -> None:
    """With function_id set nothing is registered and tasks run that function."""
    function_id = sim.preregister(ShellFunction(SHELL_FUNCTION_COMMAND, return_dict=False))
    jobs = make_jobs(sim, clock, credentials, function_id=function_id)
    status = jobs.wait(jobs.submit(echo()), 60)
    assert sim.count("register_function") == 0
    assert sim.submissions[0].function_id == function_id
    assert status.succeeded  # a ShellResult object, not a dict, is read the same way


def test_endpoint_config_and_resources_go_with_every_submission(
    sim: SimulatedCompute, clock: FakeClock, credentials: GlobusComputeCredentials
) -> None:
    """user_endpoint_config and resource_specification are sent as configured."""
    jobs = make_jobs(
        sim,
        clock,
        credentials,
        user_endpoint_config={"account": "als", "queue": "demand"},
        resource_specification={"num_nodes": 1},
    )
    jobs.submit(echo())
    assert sim.submissions[0].user_endpoint_config == {"account": "als", "queue": "demand"}
    assert sim.submissions[0].resource_specification == {"num_nodes": 1}


def test_unknown_kind_is_refused_without_a_call(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """A kind with no template is a JobError naming the known kinds; nothing is sent."""
    with pytest.raises(JobError, match=r"no job template for kind 'nope'.*known kinds: echo, fail, ok"):
        jobs.submit(JobSpec(name="x", kind="nope"))
    assert sim.calls == []


def test_missing_parameter_is_refused_without_a_call(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """A placeholder without its parameter is refused before anything is sent."""
    with pytest.raises(JobError, match=r"missing required parameter.*output"):
        jobs.submit(JobSpec(name="x", kind="echo", parameters={"input": "/a"}))
    assert sim.calls == []


def test_same_idempotency_key_gives_the_same_task(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """A spec submitted again with the same idempotency key returns the first task id."""
    first = jobs.submit(echo(key="recon/scan-1"))
    again = jobs.submit(echo(key="recon/scan-1"))
    other = jobs.submit(echo(key="recon/scan-2"))
    assert again == first
    assert other != first
    assert sim.count("batch_run") == 2


def test_a_failed_submission_does_not_claim_the_key(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """After a refused submission the same key submits a new task."""
    sim.fail_next("batch_run", api_error(400, "BAD_REQUEST", "bad", "POST"))
    with pytest.raises(JobError):
        jobs.submit(echo(key="k"))
    assert uuid.UUID(jobs.submit(echo(key="k")))


# --- hostile parameters ------------------------------------------------------------------

HOSTILE = [
    "/eagle/raw/a'; touch pwned; echo '",
    "/eagle/raw/$(touch pwned)",
    "/eagle/raw/`touch pwned`",
    "/eagle/raw/${HOME}/{input}/{0}",
    "/eagle/raw/a b && touch pwned",
    '/eagle/raw/"quoted" \\ back',
    "--levels=99",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_parameters_stay_one_word(sim: SimulatedCompute, jobs: GlobusComputeJobs, value: str) -> None:
    """Quotes, $(), backticks, braces and && in a parameter reach the command as one literal word."""
    status = jobs.wait(jobs.submit(echo(input=value, levels=value)), 60)
    assert status.succeeded
    assert status.log_tail.splitlines() == [value, "/eagle/scratch/scan 1", "--levels", value]
    assert not (sim.workdir / "pwned").exists()


def test_control_characters_are_refused(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """A newline (or any control character) in a parameter is refused before sending."""
    with pytest.raises(JobError, match="'input' contains a control character"):
        jobs.submit(echo(input="/eagle/raw/a\ntouch pwned"))
    assert sim.calls == []


# --- status ----------------------------------------------------------------------------


def test_a_task_goes_pending_running_completed(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """Waiting for the endpoint is PENDING, running is RUNNING, return code 0 is COMPLETED exit 0."""
    sim.plan_next(pending=("received", "waiting-for-ep", "running"))
    task_id = jobs.submit(echo())
    assert jobs.status(task_id).state is JobState.PENDING
    waiting = jobs.status(task_id)
    assert waiting.state is JobState.PENDING
    assert "endpoint" in (waiting.reason or "")
    assert jobs.status(task_id).state is JobState.RUNNING
    done = jobs.status(task_id)
    assert done.state is JobState.COMPLETED
    assert done.exit_code == 0
    assert done.succeeded
    assert done.log_tail == "/eagle/raw/scan 1.h5\n/eagle/scratch/scan 1"
    assert done.started_at is not None
    assert done.finished_at is not None
    assert done.started_at.timestamp() == EPOCH.timestamp() + 1.0
    assert done.finished_at.timestamp() == EPOCH.timestamp() + 2.0


def test_a_final_status_is_not_asked_again(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """Once a task has ended its status is remembered, and identical on every call."""
    task_id = jobs.submit(echo())
    final = jobs.wait(task_id, 60)
    asked = sim.count("get_task")
    assert jobs.status(task_id) == final
    assert sim.count("get_task") == asked


def test_non_zero_exit_is_failed_with_stderr_and_stdout(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """A non-zero return code is FAILED with that exit code and the tails of stderr and stdout."""
    status = jobs.wait(jobs.submit(failing()), 60)
    assert status.state is JobState.FAILED
    assert status.exit_code == 3
    assert status.reason == "exit code 3"
    assert not status.succeeded
    assert "[stderr]\ncannot open /exchange/data" in status.log_tail
    assert "[stdout]\nworking on /eagle/raw/x.h5" in status.log_tail


def test_log_tail_keeps_the_last_lines(
    sim: SimulatedCompute, clock: FakeClock, credentials: GlobusComputeCredentials
) -> None:
    """Only log_tail_lines lines of each stream are kept."""
    jobs = make_jobs(sim, clock, credentials, log_tail_lines=2)
    sim.plan_next(result={"returncode": 1, "stdout": "", "stderr": "one\ntwo\nthree\n", "exception_name": None})
    status = jobs.wait(jobs.submit(failing()), 60)
    assert "[stderr]\ntwo\nthree" in status.log_tail
    assert "one" not in status.log_tail


def test_exit_124_under_the_time_limit_is_timeout(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """The command stopped by timeout (exit 124) is TIMEOUT, not a success."""
    sim.plan_next(result={"returncode": 124, "stdout": "", "stderr": "", "exception_name": None})
    status = jobs.wait(jobs.submit(echo()), 60)
    assert status.state is JobState.TIMEOUT
    assert status.exit_code == 124
    assert not status.succeeded


def test_killed_by_a_signal(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """A negative return code is FAILED, killed by that signal."""
    sim.plan_next(result={"returncode": -9, "stdout": "", "stderr": "", "exception_name": None})
    status = jobs.wait(jobs.submit(echo()), 60)
    assert status.state is JobState.FAILED
    assert status.reason == "killed by signal 9"


def test_a_task_that_raised_is_failed_with_the_exception(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """An exception on the endpoint is FAILED with its last line as the reason and the traceback as log."""
    sim.plan_next(exception='Traceback (most recent call last):\n  File "x"\nOSError: [Errno 28] No space left')
    status = jobs.wait(jobs.submit(echo()), 60)
    assert status.state is JobState.FAILED
    assert status.exit_code is None
    assert status.reason == "the task raised on the endpoint: OSError: [Errno 28] No space left"
    assert "Traceback" in status.log_tail
    assert status.finished_at is not None


def test_a_lost_worker_is_node_fail(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """A task whose worker was lost is NODE_FAIL."""
    sim.plan_next(exception="parsl.executors.high_throughput.errors.WorkerLost: Task failure due to loss of worker")
    assert jobs.wait(jobs.submit(echo()), 60).state is JobState.NODE_FAIL


def test_a_result_that_is_not_a_shell_result_is_failed(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """A function that returns something else never counts as a success."""
    sim.plan_next(result=42)
    status = jobs.wait(jobs.submit(echo()), 60)
    assert status.state is JobState.FAILED
    assert "not a shell result" in (status.reason or "")


def test_failed_without_a_result_is_failed_with_the_reason(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """The service saying failed with a reason (and no result) is FAILED with that reason."""
    sim.plan_next(failed_reason="endpoint was restarted")
    status = jobs.wait(jobs.submit(echo()), 60)
    assert status.state is JobState.FAILED
    assert "endpoint was restarted" in (status.reason or "")


@pytest.mark.parametrize("unknown_as", ["404", "failed"])
def test_unknown_task_is_job_not_found(
    tmp_path: Path, clock: FakeClock, credentials: GlobusComputeCredentials, unknown_as: str
) -> None:
    """A task id the service does not know (404, or failed "Unknown task id") is JobNotFound."""
    sim = SimulatedCompute(tmp_path, clock, unknown_as=unknown_as)
    jobs = make_jobs(sim, clock, credentials)
    stranger = str(uuid.uuid4())
    with pytest.raises(JobNotFound, match=stranger):
        jobs.status(stranger)
    with pytest.raises(JobNotFound):
        jobs.wait(stranger, 60)
    with pytest.raises(JobNotFound):
        jobs.cancel(stranger)


def test_an_id_that_is_not_a_uuid_is_not_found_without_a_call(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """A job id that cannot be a task id is JobNotFound at once."""
    with pytest.raises(JobNotFound, match="not a Globus Compute task id"):
        jobs.status("12345")
    assert sim.calls == []


def test_a_task_submitted_by_another_process_is_known(
    sim: SimulatedCompute, clock: FakeClock, credentials: GlobusComputeCredentials
) -> None:
    """After a restart the status of a task id from the ledger comes from the service."""
    task_id = make_jobs(sim, clock, credentials).submit(echo())
    later = make_jobs(sim, clock, credentials)
    status = later.wait(task_id, 60)
    assert status.succeeded
    assert status.started_at is not None


# --- transient errors and retries --------------------------------------------------------


@pytest.mark.parametrize("error", [api_error(503), api_error(429), api_error(502), network_error()])
def test_transient_errors_are_retried(sim: SimulatedCompute, jobs: GlobusComputeJobs, error: Exception) -> None:
    """429, 5xx and network errors are retried; a call that then succeeds is not an error."""
    task_id = jobs.submit(echo())
    sim.fail_next("get_task", error, count=2)
    assert jobs.status(task_id).state is JobState.PENDING
    assert sim.count("get_task") == 3


def test_transient_errors_become_transient_job_errors(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """Still failing after the bounded retries is TransientJobError, caused by the SDK error."""
    task_id = jobs.submit(echo())
    sim.fail_next("get_task", api_error(503, "ServiceUnavailable", "down"), count=3)
    with pytest.raises(TransientJobError, match=r"task .* HTTP 503 ServiceUnavailable: down") as info:
        jobs.status(task_id)
    assert info.value.__cause__ is not None


def test_submission_transient_errors(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """A submission refused transiently three times is TransientJobError; no task id is remembered."""
    sim.fail_next("batch_run", api_error(503, method="POST"), count=3)
    with pytest.raises(TransientJobError, match="submitting job echo"):
        jobs.submit(echo(key="k"))
    assert sim.tasks == {}


def test_wait_rides_out_transient_errors(sim: SimulatedCompute, jobs: GlobusComputeJobs, clock: FakeClock) -> None:
    """While the status is unavailable wait keeps polling through the clock."""
    task_id = jobs.submit(echo())
    sim.fail_next("get_task", network_error(), count=3)
    assert jobs.wait(task_id, 3600).succeeded
    assert clock.sleeps[:3] == [10.0, 15.0, 22.5]


def test_wait_gives_back_a_running_task_at_its_deadline(
    sim: SimulatedCompute, jobs: GlobusComputeJobs, clock: FakeClock
) -> None:
    """A wait shorter than the task returns its non-terminal status without oversleeping."""
    sim.plan_next(hang=True)
    status = jobs.wait(jobs.submit(echo()), 30)
    assert status.state is JobState.RUNNING
    assert clock.slept == 30


def test_rejected_token_is_a_credentials_error(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """HTTP 401 from the service is CredentialsError, not retried."""
    task_id = jobs.submit(echo())
    sim.fail_next("get_task", api_error(401, "UNAUTHORIZED"))
    with pytest.raises(CredentialsError, match="Globus Auth rejected the token"):
        jobs.status(task_id)
    assert sim.count("get_task") == 1


def test_forbidden_endpoint_is_a_permanent_job_error(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """HTTP 403 on submission is a JobError that is not transient."""
    sim.fail_next("batch_run", api_error(403, "ENDPOINT_ACCESS_FORBIDDEN", "no", "POST"))
    with pytest.raises(JobError, match="access denied") as info:
        jobs.submit(echo())
    assert not isinstance(info.value, TransientJobError)


def test_client_creation_refused_is_a_credentials_error(
    sim: SimulatedCompute, clock: FakeClock, credentials: GlobusComputeCredentials
) -> None:
    """Globus Auth refusing the client while it is built is CredentialsError."""

    def refuse(_: GlobusComputeCredentials) -> SimulatedCompute:
        raise api_error(400, "invalid_client", "bad secret", "POST")

    jobs = make_jobs(sim, clock, credentials)
    jobs._client_factory = refuse
    with pytest.raises(CredentialsError, match="rejected the client") as info:
        jobs.submit(echo())
    assert "s3cr3t" not in str(info.value)


def test_client_creation_unreachable_is_transient(
    sim: SimulatedCompute, clock: FakeClock, credentials: GlobusComputeCredentials
) -> None:
    """Globus Auth unreachable while the client is built is TransientJobError after retries."""
    attempts: list[int] = []

    def unreachable(_: GlobusComputeCredentials) -> SimulatedCompute:
        attempts.append(1)
        raise network_error()

    jobs = make_jobs(sim, clock, credentials)
    jobs._client_factory = unreachable
    with pytest.raises(TransientJobError, match="connecting to Globus Compute"):
        jobs.submit(echo())
    assert len(attempts) == 3


# --- cancel ------------------------------------------------------------------------------


def test_cancel_a_running_task(sim: SimulatedCompute, jobs: GlobusComputeJobs, clock: FakeClock) -> None:
    """A cancelled task is CANCELLED from then on, with a reason saying it may still run."""
    sim.plan_next(hang=True)
    task_id = jobs.submit(echo())
    assert jobs.status(task_id).state is JobState.RUNNING
    jobs.cancel(task_id)
    status = jobs.status(task_id)
    assert status.state is JobState.CANCELLED
    assert "cannot stop" in (status.reason or "")
    assert status.finished_at == clock.now()
    jobs.cancel(task_id)
    assert jobs.wait(task_id, 60) == status


def test_cancel_a_finished_task_changes_nothing(sim: SimulatedCompute, jobs: GlobusComputeJobs) -> None:
    """Cancelling after the end keeps the final state."""
    task_id = jobs.submit(echo())
    final = jobs.wait(task_id, 60)
    jobs.cancel(task_id)
    assert jobs.status(task_id) == final


# --- text -------------------------------------------------------------------------------


def test_secrets_stay_out_of_reprs(jobs: GlobusComputeJobs, credentials: GlobusComputeCredentials) -> None:
    """Neither the port's nor the credentials' repr shows the secret or the whole client id."""
    for text in (repr(jobs), repr(credentials), str(credentials)):
        assert "s3cr3t" not in text
        assert credentials.client_id not in text


@pytest.mark.parametrize(
    ("client_id", "secret", "match"),
    [("", "x", "empty"), ("not-a-uuid", "x", "not a UUID"), ("c11e0000-0000-4000-8000-000000000001", " ", "empty")],
)
def test_bad_credentials_are_refused(client_id: str, secret: str, match: str) -> None:
    """An empty or malformed client id, or an empty secret, is CredentialsError."""
    with pytest.raises(CredentialsError, match=match):
        GlobusComputeCredentials(client_id=client_id, client_secret=secret)
