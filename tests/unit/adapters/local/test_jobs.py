"""Local jobs: templates, time limits, process groups, and state that outlives the Python process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from splash_core.adapters.local import LocalJobs
from splash_core.domain.errors import JobError, JobNotFound
from splash_core.domain.models import JobSpec, JobState

TEMPLATES = {
    "echo": "#!/bin/bash\n#SBATCH --nodes=1\necho value=$value\n",
    "home": "echo home=$${HOME:+set}\n",
    "env": "echo id=$${SPLASH_JOB_ID} name=$job_name\n",
    "many": "for i in $$(seq 1 100); do echo line $$i; done\n",
    "spawn": "sleep 60 &\necho $$! > $job_dir/child.pid\nwait\n",
    "pid": "echo $$$$ > $job_dir/$job_id.pid\nsleep 60\n",
    "exit4": "sleep 0.3\nexit 4\n",
    "sleep": "sleep 60\n",
}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The database file."""
    return tmp_path / "splash.db"


@pytest.fixture
def jobs(db: Path) -> Iterator[LocalJobs]:
    """A local facility; whatever still runs afterwards is cancelled."""
    port = LocalJobs(db, TEMPLATES, facility="nersc", kill_grace_s=1.0)
    yield port
    for job_id in port.active_jobs():
        port.cancel(job_id)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (zombies count as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for_file(path: Path, timeout_s: float = 10.0) -> str:
    """The text of ``path`` once it exists and is not empty."""
    deadline = time.monotonic() + timeout_s
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.01)
    return path.read_text().strip()


def test_parameters_are_shell_quoted(tmp_path: Path, jobs: LocalJobs) -> None:
    """A parameter cannot inject shell code; it arrives as one literal word."""
    evil = f"$(touch {tmp_path}/pwned); `touch {tmp_path}/pwned2` 'quoted'"
    status = jobs.wait(jobs.submit(JobSpec("q", "echo", {"value": evil})), 30)
    assert status.succeeded
    assert status.log_tail == f"value={evil}"
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "pwned2").exists()


def test_double_dollar_is_a_literal_dollar_for_bash(jobs: LocalJobs) -> None:
    """$$NAME reaches bash as $NAME; the job id and name are available."""
    assert jobs.wait(jobs.submit(JobSpec("h", "home")), 30).log_tail == "home=set"
    job_id = jobs.submit(JobSpec("my job", "env"))
    assert jobs.wait(job_id, 30).log_tail == f"id={job_id} name=my job"


def test_a_missing_parameter_is_refused_at_submit(jobs: LocalJobs) -> None:
    """A placeholder with no parameter is named in the error and nothing runs."""
    with pytest.raises(JobError, match=r"\$value"):
        jobs.submit(JobSpec("q", "echo"))
    assert jobs.active_jobs() == ()


def test_log_tail_is_the_last_forty_lines(jobs: LocalJobs) -> None:
    """Long logs are cut to their end."""
    tail = jobs.wait(jobs.submit(JobSpec("m", "many")), 30).log_tail.splitlines()
    assert len(tail) == 40
    assert tail[0] == "line 61"
    assert tail[-1] == "line 100"


def test_time_limit_times_out_and_kills_the_process_group(tmp_path: Path, jobs: LocalJobs) -> None:
    """A job past its limit is TIMEOUT and its background children die too."""
    job_id = jobs.submit(JobSpec("slow", "spawn", time_limit_s=0.5))
    child = int(wait_for_file(tmp_path / "jobs" / "child.pid"))
    status = jobs.wait(job_id, 30)
    assert status.state is JobState.TIMEOUT
    assert "time limit" in (status.reason or "")
    deadline = time.monotonic() + 5
    while alive(child):
        assert time.monotonic() < deadline, "the job's child survived the timeout"
        time.sleep(0.02)


def test_cancel_kills_the_process_group(tmp_path: Path, jobs: LocalJobs) -> None:
    """Cancelling stops the job's children as well."""
    job_id = jobs.submit(JobSpec("slow", "spawn"))
    child = int(wait_for_file(tmp_path / "jobs" / "child.pid"))
    jobs.cancel(job_id)
    assert jobs.status(job_id).state is JobState.CANCELLED
    deadline = time.monotonic() + 5
    while alive(child):
        assert time.monotonic() < deadline, "the job's child survived the cancel"
        time.sleep(0.02)


def test_status_survives_a_new_instance(db: Path, jobs: LocalJobs) -> None:
    """Another LocalJobs on the same database answers for jobs it did not start."""
    job_id = jobs.submit(JobSpec("q", "echo", {"value": "42"}, idempotency_key="k-1"))
    first = jobs.wait(job_id, 30)
    other = LocalJobs(db, TEMPLATES, facility="nersc")
    assert other.status(job_id) == first
    assert other.submit(JobSpec("q", "echo", {"value": "42"}, idempotency_key="k-1")) == job_id


def _in_another_process(db: Path, kind: str) -> str:
    script = (
        "import os, sys\n"
        "from splash_core.adapters.local import LocalJobs\n"
        "from splash_core.domain.models import JobSpec\n"
        f"templates = {TEMPLATES!r}\n"
        "jobs = LocalJobs(sys.argv[1], templates, facility='nersc')\n"
        "print(jobs.submit(JobSpec('orphan', sys.argv[2])), flush=True)\n"
        "os._exit(0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(db), kind], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def test_a_job_that_ended_while_nobody_watched_is_settled_from_its_exit_file(db: Path) -> None:
    """The exit code written by the wrapper is read by a later process."""
    job_id = _in_another_process(db, "exit4")
    status = LocalJobs(db, TEMPLATES, facility="nersc").wait(job_id, 30)
    assert status.state is JobState.FAILED
    assert status.exit_code == 4


def test_a_job_whose_process_vanished_is_lost(tmp_path: Path, db: Path) -> None:
    """A job killed without recording an exit code is FAILED with reason "lost"."""
    job_id = _in_another_process(db, "pid")
    pid = int(wait_for_file(tmp_path / "jobs" / f"{job_id}.pid"))
    jobs = LocalJobs(db, TEMPLATES, facility="nersc")
    assert jobs.status(job_id).state is JobState.RUNNING
    os.killpg(os.getpgid(pid), 9)
    status = jobs.wait(job_id, 30)
    assert status.state is JobState.FAILED
    assert (status.reason or "").startswith("lost")
    assert status.exit_code is None


def test_logs_go_to_the_log_dir(tmp_path: Path, db: Path) -> None:
    """Scripts and logs land in the given folder, named after the job id."""
    jobs = LocalJobs(db, TEMPLATES, log_dir=tmp_path / "logs")
    job_id = jobs.submit(JobSpec("q", "echo", {"value": "v"}))
    assert jobs.wait(job_id, 30).succeeded
    assert (tmp_path / "logs" / f"{job_id}.log").read_text() == "value=v\n"
    assert (tmp_path / "logs" / f"{job_id}.sh").read_text().startswith("#!/bin/bash\n#SBATCH --nodes=1\n")
    assert jobs.facility == "local"


def test_facilities_sharing_a_database_keep_their_jobs_apart(db: Path, jobs: LocalJobs) -> None:
    """Job ids and idempotency keys belong to one facility."""
    alcf = LocalJobs(db, TEMPLATES, facility="alcf")
    nersc_job = jobs.submit(JobSpec("q", "echo", {"value": "n"}, idempotency_key="recon/scan-1"))
    alcf_job = alcf.submit(JobSpec("q", "echo", {"value": "a"}, idempotency_key="recon/scan-1"))
    assert alcf_job != nersc_job
    assert alcf.wait(alcf_job, 30).log_tail == "value=a"
    with pytest.raises(JobNotFound):
        alcf.status(nersc_job)
    assert jobs.wait(nersc_job, 30).log_tail == "value=n"
