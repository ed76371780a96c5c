"""The SFAPI adapters against the real NERSC Superfacility API (marked ``live``; skipped without credentials).

Set, to run them (``nox -s live`` or ``pytest -m live``):

* ``SFAPI_CLIENT_ID_FILE``: a file holding the SFAPI client id (from Iris);
* ``SFAPI_PRIVATE_KEY_FILE``: its private key, PEM, mode 0600 (a "red" client may submit jobs);
* ``SFAPI_ACCOUNT``: the NERSC project to charge (e.g. ``als``);
* ``SFAPI_LOG_DIR``: an absolute folder at NERSC the client's user may write (job logs go there);

and optionally

* ``SFAPI_MACHINE`` (default ``perlmutter``), ``SFAPI_QOS`` (default ``debug``),
  ``SFAPI_CONSTRAINT`` (default ``cpu``), ``SFAPI_HELLO_IMAGE`` (the image the test jobs run
  with ``podman-hpc``, default ``docker.io/library/ubuntu:24.04``);
* ``SFAPI_TIMEOUT_S`` (default 1800): how long one job may take, queue included;
* for the HPSS round trip: ``SFAPI_HPSS_ROOT`` (an HPSS folder to write below, e.g.
  ``/home/a/alsdev/splash-live``) and ``SFAPI_CFS_SCRATCH`` (a CFS folder to create test files
  in and restore them to). The test leaves its files there under ``splash-live-<random>``.

These tests are the only check of facts the simulated SFAPI assumes: the response shapes of
``compute/jobs`` and ``tasks``, that ``hsi cput`` follows a local symlink, that ``htar -x``
takes ``-L``, and the output formats of ``htar -tvf``, ``hsi ls -l`` and ``hsi hashlist``.
"""

from __future__ import annotations

import os
import shlex
import uuid
from pathlib import Path

import pytest

from splash_core.adapters.sfapi import (
    HpssArchive,
    HpssSettings,
    JobKindSettings,
    SfapiCredentials,
    SfapiJobs,
    SfapiSettings,
    SlurmSettings,
)
from splash_core.adapters.sfapi.templates import BatchHeader
from splash_core.domain.errors import JobNotFound
from splash_core.domain.models import ArchiveMethod, Endpoint, FileRecord, JobSpec, JobState, Site, TapeBundle
from splash_core.domain.paths import RelPath

pytestmark = pytest.mark.live

REQUIRED = ("SFAPI_CLIENT_ID_FILE", "SFAPI_PRIVATE_KEY_FILE", "SFAPI_ACCOUNT", "SFAPI_LOG_DIR")
HOW_TO = (
    "live SFAPI tests need {missing}: set SFAPI_CLIENT_ID_FILE and SFAPI_PRIVATE_KEY_FILE to the files of an "
    "SFAPI client made in Iris (key mode 0600), SFAPI_ACCOUNT to the NERSC project and SFAPI_LOG_DIR to a "
    "writable absolute folder at NERSC; see this module's docstring"
)


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if not value:
        pytest.skip(f"live SFAPI test needs {name}")
    return value


@pytest.fixture(scope="module")
def jobs() -> SfapiJobs:
    """SfapiJobs with real credentials and a tiny ``hello`` kind (no container involved)."""
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    for name in ("SFAPI_CLIENT_ID_FILE", "SFAPI_PRIVATE_KEY_FILE"):
        if os.environ.get(name) and not Path(os.environ[name]).expanduser().is_file():
            missing.append(f"{name} (no file at {os.environ[name]})")
    if missing:
        pytest.skip(HOW_TO.format(missing=", ".join(missing)))
    settings = SfapiSettings(
        slurm=SlurmSettings(
            account=os.environ["SFAPI_ACCOUNT"],
            log_dir=os.environ["SFAPI_LOG_DIR"],
            qos=os.environ.get("SFAPI_QOS", "debug"),
            constraint=os.environ.get("SFAPI_CONSTRAINT", "cpu"),
        ),
        kinds={
            # a "container" kind whose podman-hpc image is a stock one at NERSC
            "hello": JobKindSettings(
                image=os.environ.get("SFAPI_HELLO_IMAGE", "docker.io/library/ubuntu:24.04"),
                command=("sh", "-c", 'echo "$2"; exit "$4"', "sh"),
                inputs=(),
                outputs=(),
                options={"message": "--message", "code": "--code"},
            )
        },
        machine=os.environ.get("SFAPI_MACHINE", "perlmutter"),
        poll_interval_s=15,
        poll_max_interval_s=60,
    )
    credentials = SfapiCredentials.from_files(os.environ["SFAPI_CLIENT_ID_FILE"], os.environ["SFAPI_PRIVATE_KEY_FILE"])
    credentials.load()
    return SfapiJobs(settings, credentials)


def _timeout() -> float:
    return float(os.environ.get("SFAPI_TIMEOUT_S", "1800"))


def test_unknown_job_is_not_found(jobs: SfapiJobs) -> None:
    """A job id nobody submitted is JobNotFound (token, squeue and sacct all answered)."""
    with pytest.raises(JobNotFound):
        jobs.status("1")


def test_job_that_succeeds(jobs: SfapiJobs) -> None:
    """A container job exiting 0 ends COMPLETED with exit code 0."""
    spec = JobSpec(name="splash-live-ok", kind="hello", parameters={"message": "hello from splash", "code": "0"})
    status = jobs.wait(jobs.submit(spec), _timeout())
    assert status.state is JobState.COMPLETED, status
    assert status.succeeded


def test_job_that_fails_carries_its_log(jobs: SfapiJobs) -> None:
    """A container job exiting 3 ends FAILED, exit code 3, with its output in the log tail."""
    spec = JobSpec(name="splash-live-fail", kind="hello", parameters={"message": "deliberate failure", "code": "3"})
    status = jobs.wait(jobs.submit(spec), _timeout())
    assert status.state is JobState.FAILED, status
    assert status.exit_code == 3
    assert "deliberate failure" in status.log_tail


def test_hpss_round_trip(jobs: SfapiJobs) -> None:
    """Files with awkward names go to HPSS by htar and hsi cput, verify, and come back."""
    hpss_root = _env("SFAPI_HPSS_ROOT")
    scratch = _env("SFAPI_CFS_SCRATCH")
    run = f"splash-live-{uuid.uuid4().hex[:8]}"
    source = Endpoint("live_source", "nersc", f"{scratch}/{run}/source", Site.OFF_SITE)
    destination = Endpoint("live_restore", "nersc", f"{scratch}/{run}/restore", Site.OFF_SITE)
    names = {"P1/a b.h5": 1000, "P1/x'$(true)'.h5": 2000, "P1/ünï.h5": 3000, "P1/big one.h5": 5000}
    # the source files are made by a job: the SFAPI has no call to write them
    header = BatchHeader(
        job_name=f"{run}-setup",
        account=jobs.settings.slurm.account,
        qos=jobs.settings.slurm.qos,
        constraint=jobs.settings.slurm.constraint,
        nodes=1,
        time_limit_s=600,
        log_dir=jobs.settings.slurm.log_dir,
    )
    setup = [f"mkdir -p -- {shlex.quote(source.root_path + '/P1')}"] + [
        f"head -c {size} /dev/urandom > {shlex.quote(source.root_path + '/' + name)}" for name, size in names.items()
    ]
    script = header.render() + "\nset -euo pipefail\n" + "\n".join(setup) + "\n"
    setup_id = jobs.submit_script(script, job_name=header.job_name, log_dir=jobs.settings.slurm.log_dir)
    assert jobs.wait(setup_id, _timeout()).succeeded

    archive = HpssArchive(jobs, HpssSettings(tape_root=hpss_root, job_timeout_s=_timeout()))
    records = [FileRecord(RelPath.parse(n), s) for n, s in names.items() if n != "P1/big one.h5"]
    bundle = TapeBundle(f"{run}_2025-1.tar", ArchiveMethod.HTAR, tuple(records), run, 2025, 1)
    receipt = archive.verify(archive.archive(bundle, source))
    archive.restore(receipt, tuple(r.path for r in records), destination)

    big = FileRecord(RelPath.parse("P1/big one.h5"), 5000)
    single = TapeBundle(big.path.value, ArchiveMethod.HSI_CPUT, (big,), run, 2025, 1)
    single_receipt = archive.verify(archive.archive(single, source))
    archive.restore(single_receipt, (big.path,), destination)
