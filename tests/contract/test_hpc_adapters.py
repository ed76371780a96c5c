"""The HPC job contract, run against the fake and the local subprocess adapter."""

from __future__ import annotations

from pathlib import Path

from splash_core.adapters.local import LocalJobs
from splash_core.domain.models import JobSpec
from splash_core.ports.hpc import HPCJobPort
from tests.contract.hpc_contract import HPCContract, HPCEnv
from tests.fakes import FakeClock, FakeHPC, FakeStorage


def _raise(spec: JobSpec) -> int:
    raise RuntimeError(spec.parameters["message"])


class FakeHPCEnv(HPCEnv):
    """Handlers in place of job scripts; time is the fake clock's."""

    def __init__(self) -> None:
        clock = FakeClock()
        self.facility = "nersc"
        self.fail_exit_code = 1  # a handler that raises is exit code 1
        self.timeout_s = 3600.0
        self.hpc = FakeHPC(FakeStorage(clock), clock, facility="nersc", handlers={"ok": lambda _: 0, "fail": _raise})

    @property
    def port(self) -> HPCJobPort:
        return self.hpc

    def succeeding(self, name: str, key: str = "") -> JobSpec:
        return JobSpec(name, "ok", idempotency_key=key)

    def failing(self, name: str, message: str) -> JobSpec:
        return JobSpec(name, "fail", {"message": message})

    def hanging(self, name: str) -> JobSpec:
        self.hpc.hang_next()
        return JobSpec(name, "ok")


TEMPLATES = {
    "ok": "#!/bin/bash\n#SBATCH --job-name=$job_name\n#SBATCH --time=00:05:00\necho running $job_name\n",
    "fail": "#!/bin/bash\n#SBATCH --qos=realtime\necho $message >&2\nexit 3\n",
    "hang": "#!/bin/bash\nsleep 60\n",
}


class LocalHPCEnv(HPCEnv):
    """Bash scripts run as subprocesses."""

    def __init__(self, tmp_path: Path) -> None:
        self.facility = "nersc"
        self.fail_exit_code = 3
        self.jobs = LocalJobs(tmp_path / "splash.db", TEMPLATES, facility="nersc", kill_grace_s=2.0)

    @property
    def port(self) -> HPCJobPort:
        return self.jobs

    def succeeding(self, name: str, key: str = "") -> JobSpec:
        return JobSpec(name, "ok", idempotency_key=key)

    def failing(self, name: str, message: str) -> JobSpec:
        return JobSpec(name, "fail", {"message": message})

    def hanging(self, name: str) -> JobSpec:
        return JobSpec(name, "hang")

    def close(self) -> None:
        for job_id in self.jobs.active_jobs():
            self.jobs.cancel(job_id)


class TestFakeHPC(HPCContract):
    """The fake honours the HPC job contract."""

    def make_env(self, tmp_path: Path) -> HPCEnv:
        return FakeHPCEnv()


class TestLocalJobs(HPCContract):
    """The local subprocess adapter honours the HPC job contract."""

    def make_env(self, tmp_path: Path) -> HPCEnv:
        return LocalHPCEnv(tmp_path)


# --- SFAPI (NERSC Slurm through a simulated Superfacility API, served with respx) ---------------


class SfapiHPCEnv(HPCEnv):
    """SfapiJobs against the simulated SFAPI: job scripts really run (bash, stand-in podman-hpc)."""

    def __init__(self, tmp_path: Path) -> None:
        import stamina

        from splash_core.adapters.sfapi import JobKindSettings, SfapiJobs
        from tests.unit.adapters.sfapi.simulated import SimulatedSfapi

        self._testing = stamina.set_testing(True, attempts=3)
        self.facility = "nersc"
        self.fail_exit_code = 3
        self.timeout_s = 3600.0  # fake time
        self.clock = FakeClock()
        self.sim = SimulatedSfapi(tmp_path)
        kinds = {
            "ok": JobKindSettings(image="registry.test/ok:1", command=("true",), inputs=(), outputs=()),
            "fail": JobKindSettings(
                image="registry.test/fail:1",
                command=("sh", "-c", 'echo "$2" >&2; exit 3', "sh"),
                inputs=(),
                outputs=(),
                options={"message": "--message"},
            ),
        }
        self.jobs = SfapiJobs(
            self.sim.settings(kinds=kinds),
            self.sim.credentials(),
            client_factory=self.sim.client_factory,
            clock=self.clock,
        )

    @property
    def port(self) -> HPCJobPort:
        return self.jobs

    def succeeding(self, name: str, key: str = "") -> JobSpec:
        return JobSpec(name, "ok", idempotency_key=key)

    def failing(self, name: str, message: str) -> JobSpec:
        return JobSpec(name, "fail", {"message": message})

    def hanging(self, name: str) -> JobSpec:
        self.sim.plan_next(queue=("PENDING",) + ("RUNNING",) * 10_000)
        return JobSpec(name, "ok")

    def close(self) -> None:
        self.jobs.close()
        self._testing.__exit__(None, None, None)


class TestSfapiJobs(HPCContract):
    """The SFAPI adapter honours the HPC job contract (simulated SFAPI and Slurm)."""

    def make_env(self, tmp_path: Path) -> HPCEnv:
        return SfapiHPCEnv(tmp_path)


# --- Globus Compute (ALCF) over a stand-in SDK client whose ShellFunction tasks really run --------


class GlobusComputeHPCEnv(HPCEnv):
    """GlobusComputeJobs over the stand-in client: task commands run with bash, on fake time."""

    def __init__(self, tmp_path: Path) -> None:
        import stamina

        from splash_core.adapters.globus_compute import (
            GlobusComputeCredentials,
            GlobusComputeJobs,
            GlobusComputeSettings,
            JobTemplate,
        )
        from tests.unit.adapters.globus_compute.simulated import (
            CLIENT_ID,
            CLIENT_SECRET,
            ENDPOINT_ID,
            SimulatedCompute,
        )

        self._testing = stamina.set_testing(True, attempts=3)
        self.facility = "alcf"
        self.fail_exit_code = 3
        self.timeout_s = 3600.0  # fake time
        self.clock = FakeClock()
        self.sim = SimulatedCompute(tmp_path / "endpoint", self.clock)
        templates = {
            "ok": JobTemplate(command="echo running {job_name}"),
            "fail": JobTemplate(command="printf '%s\\n' {message} >&2; exit 3"),
        }
        self.jobs = GlobusComputeJobs(
            GlobusComputeSettings(endpoint_id=ENDPOINT_ID, templates=templates),
            GlobusComputeCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET),
            facility="alcf",
            client_factory=self.sim.client_factory,
            clock=self.clock,
        )

    @property
    def port(self) -> HPCJobPort:
        return self.jobs

    def succeeding(self, name: str, key: str = "") -> JobSpec:
        return JobSpec(name, "ok", idempotency_key=key)

    def failing(self, name: str, message: str) -> JobSpec:
        return JobSpec(name, "fail", {"message": message})

    def hanging(self, name: str) -> JobSpec:
        self.sim.plan_next(hang=True)
        return JobSpec(name, "ok")

    def close(self) -> None:
        self._testing.__exit__(None, None, None)


class TestGlobusComputeJobs(HPCContract):
    """The Globus Compute adapter honours the HPC job contract (stand-in SDK client)."""

    def make_env(self, tmp_path: Path) -> HPCEnv:
        return GlobusComputeHPCEnv(tmp_path)
