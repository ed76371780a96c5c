"""A simulated NERSC Superfacility API, served with respx, with a tiny Slurm behind it.

Submitted batch scripts really run: ``bash`` executes them on this machine with stand-ins for
``srun``, ``podman-hpc``, ``hsi`` and ``htar`` on ``PATH`` (see :data:`STUBS`), and the job's
log goes where its ``#SBATCH --output`` line says. ``hsi`` keeps "HPSS" in ordinary folders and
refuses any name HSI itself would misread (spaces, quotes, wildcards, non-ASCII), ``htar``
writes real tar files, and ``podman-hpc run`` runs the command after the image, here.

A job's life is planned (:meth:`SimulatedSfapi.plan_next`): a number of status polls in which
neither squeue nor sacct knows it (the API's lag), then the squeue states it shows, then it
runs and sacct holds its end (with ``.batch`` and ``.extern`` step rows). Faults: HTTP errors
for the next requests (:meth:`fail_next`), expired tokens (:meth:`expire_tokens`), a refusing
sbatch (:attr:`JobPlan.sbatch_error`).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import attrs
import httpx
import respx

from splash_core.adapters.sfapi import SfapiCredentials, SfapiSettings, SlurmSettings
from splash_core.adapters.sfapi.settings import JobKindSettings

BASE = "https://api.sfapi.test/api/v1.2"
TOKEN_URL = "https://oidc.sfapi.test/c2id/token"
MACHINE = "perlmutter"

_HSI = r"""
import hashlib, json, os, re, shutil, sys

# Names HSI reads literally: printable ASCII without spaces, quotes or wildcards.
SAFE = re.compile(r"^[A-Za-z0-9_./+-]+$")
META = os.environ["SIM_HSI_META"]


def fail(msg, code=1):
    print(f"*** hsi: {msg}", file=sys.stderr)
    sys.exit(code)


def meta_path(tape):
    return os.path.join(META, hashlib.sha256(tape.encode()).hexdigest() + ".json")


args = sys.argv[1:]
if args[:1] == ["-q"]:
    args = args[1:]
if len(args) != 1:
    fail(f"expected one command string, got {args!r}", 64)
words = args[0].split(" ")
if any(not SAFE.match(w) for w in words if w not in (":",)):
    fail(f"simulated hsi refuses a name it would misread: {args[0]!r}", 65)
cmd, rest = words[0], words[1:]
if cmd == "mkdir" and rest[:1] == ["-p"]:
    os.makedirs(rest[1], exist_ok=True)
elif cmd == "cput":
    checksum = rest[:2] == ["-c", "on"]
    if checksum:
        rest = rest[2:]
    local, colon, tape = rest
    if os.path.exists(tape):
        print(f"cput: {tape} exists; skipped", file=sys.stderr)
        sys.exit(0)
    data = open(local, "rb").read()
    open(tape, "wb").write(data)
    if checksum:
        json.dump({"md5": hashlib.md5(data).hexdigest()}, open(meta_path(tape), "w"))
elif cmd == "get":
    local, colon, tape = rest
    if not os.path.isfile(tape):
        fail(f"get: {tape}: No such file or directory [-2: HPSS_ENOENT]", 72)
    shutil.copyfile(tape, local)
elif cmd == "ls" and rest[:1] == ["-l"]:
    tape = rest[1]
    if not os.path.isfile(tape):
        fail(f"hpss_Lstat: {tape}: No such file or directory [-2: HPSS_ENOENT]", 72)
    size = os.path.getsize(tape)
    print(f"-rw-r-----    1 alsdev    als     {size:>12} Jan 10 12:00 {tape}", file=sys.stderr)
elif cmd == "hashlist":
    tape = rest[0]
    try:
        md5 = json.load(open(meta_path(tape)))["md5"]
    except FileNotFoundError:
        print(f"(none)  {tape}", file=sys.stderr)
    else:
        print(f"{md5}  md5  {tape} (hsi)", file=sys.stderr)
else:
    fail(f"simulated hsi does not know {args[0]!r}", 64)
"""

_HTAR = r"""
import os, sys, tarfile


def fail(msg, code=1):
    print(f"HTAR: ERROR: {msg}", file=sys.stderr)
    sys.exit(code)


args = sys.argv[1:]
mode, archive = args[0], args[1]
rest = args[2:]
names = None
if rest[:1] == ["-L"]:
    with open(rest[1], encoding="utf-8", errors="surrogateescape", newline="\n") as fh:
        names = [line[:-1] if line.endswith("\n") else line for line in fh]
elif rest:
    names = rest
if mode == "-cvf":
    if not names:
        fail("no files to archive")
    for name in names:
        if not os.path.isfile(name):
            fail(f"cannot stat {name!r}")
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            tar.add(name, arcname=name, recursive=False)
            print(f"HTAR: a   {name}")
    open(archive + ".idx", "w").write("index\n")
    print("HTAR: HTAR SUCCESSFUL")
elif mode == "-tvf":
    if not os.path.isfile(archive):
        fail(f"{archive}: No such file or directory", 72)
    with tarfile.open(archive, "r") as tar:
        for member in tar.getmembers():
            kind = "-" if member.isfile() else "d"
            print(f"HTAR: {kind}rw-r--r--  alsdev/als {member.size:>12} 2025-01-06 09:00  {member.name}")
    print(f"HTAR: Listing complete for {archive}")
    print("HTAR: HTAR SUCCESSFUL")
elif mode == "-xvf":
    if not os.path.isfile(archive):
        fail(f"{archive}: No such file or directory", 72)
    with tarfile.open(archive, "r") as tar:
        members = {m.name: m for m in tar.getmembers()}
        wanted = names if names else list(members)
        missing = [n for n in wanted if n not in members]
        if missing:
            fail(f"not found in archive: {missing!r}")
        for name in wanted:
            tar.extract(members[name], ".", filter="data")
            print(f"HTAR: x {name}, {members[name].size} bytes")
    print("HTAR: HTAR SUCCESSFUL")
else:
    fail(f"simulated htar does not know {mode}", 64)
"""

_PODMAN = r"""
import os, sys

args = sys.argv[1:]
if args[:1] != ["run"]:
    sys.exit(f"simulated podman-hpc only runs containers, got {args!r}")
args = args[1:]
while args and args[0].startswith("-"):
    args = args[1:]
image, command = args[0], args[1:]
if not command:
    sys.exit(f"no command for image {image}")
os.execvp(command[0], command)
"""

_SRUN = r"""
import os, sys

args = sys.argv[1:]
while args and args[0].startswith("-"):
    args = args[1:]
os.execvp(args[0], args)
"""

STUBS = {"hsi": _HSI, "htar": _HTAR, "podman-hpc": _PODMAN, "srun": _SRUN}


@attrs.define
class JobPlan:
    """How the next submitted job behaves."""

    hidden_polls: int = 0
    queue: tuple[str, ...] = ("PENDING", "RUNNING")
    state: str | None = None
    exit_code: str | None = None
    log: str | None = None
    run: bool = True
    sbatch_error: str | None = None
    reason: str = "None"


@attrs.define
class SimJob:
    """A job the simulated Slurm knows."""

    job_id: str
    script: str
    name: str
    log_path: str
    plan: JobPlan
    polls: int = 0
    state: str = "PENDING"
    exit_code: str = "0:0"
    ended: bool = False
    returncode: int | None = None

    @property
    def in_queue(self) -> bool:
        return not self.ended


def _header(script: str, option: str) -> str | None:
    match = re.search(rf"^#SBATCH --{option}=(\S+)$", script, re.MULTILINE)
    return match.group(1) if match else None


@functools.cache
def _pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def make_key_files(folder: Path, *, mode: int = 0o600) -> tuple[Path, Path, str]:
    """A client id file and an RSA private key file (PEM) in ``folder``; returns them and the PEM."""
    folder.mkdir(parents=True, exist_ok=True)
    pem = _pem()
    id_file = folder / "clientid.txt"
    key_file = folder / "priv_key.pem"
    id_file.write_text("simclient0001\n")
    key_file.write_text(pem)
    key_file.chmod(mode)
    return id_file, key_file, pem


class SimulatedSfapi:
    """The SFAPI and a Slurm whose jobs run here. Use :meth:`client_factory` as the adapter's."""

    def __init__(self, workdir: Path, *, machine: str = MACHINE) -> None:
        self.workdir = workdir
        self.machine = machine
        self.bin = workdir / "sim-bin"
        self.hsi_meta = workdir / "sim-hsi-meta"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.hsi_meta.mkdir(parents=True, exist_ok=True)
        for name, body in STUBS.items():
            path = self.bin / name
            path.write_text(f"#!{sys.executable}\n{textwrap.dedent(body)}")
            path.chmod(path.stat().st_mode | stat.S_IXUSR)
        self.jobs: dict[str, SimJob] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.plans: list[JobPlan] = []
        self.faults: list[tuple[int, str | None]] = []
        self.valid_tokens: set[str] = set()
        self.tokens_issued = 0
        self.token_faults: list[int] = []
        self.task_pending_polls = 0
        """Polls for which a submission task stays "new"."""
        self.requests: list[httpx.Request] = []
        self.commands: list[str] = []
        self._next_job = 4242000
        self._next_task = 0
        self.router = respx.MockRouter(assert_all_called=False, assert_all_mocked=True)
        self.router.post(TOKEN_URL).mock(side_effect=self._token)
        self.router.route(url__startswith=BASE).mock(side_effect=self._api)

    # --- wiring ----------------------------------------------------------------------

    def client_factory(self) -> httpx.Client:
        """An ``httpx.Client`` whose requests this simulator answers."""
        return httpx.Client(transport=httpx.MockTransport(self.router.handler))

    def settings(self, log_dir: Path | None = None, **overrides: Any) -> SfapiSettings:
        """Settings pointing at the simulator, with the example kinds and a local log folder."""
        logs = log_dir or (self.workdir / "logs")
        logs.mkdir(parents=True, exist_ok=True)
        kinds = overrides.pop("kinds", None)
        values: dict[str, Any] = {
            "slurm": SlurmSettings(account="als", log_dir=str(logs), qos="realtime"),
            "kinds": kinds if kinds is not None else {"echo": echo_kind()},
            "machine": self.machine,
            "api_base_url": BASE,
            "token_url": TOKEN_URL,
            "poll_interval_s": 5.0,
            "poll_max_interval_s": 30.0,
            "not_found_grace_s": 120.0,
            "submit_timeout_s": 60.0,
        }
        values.update(overrides)
        return SfapiSettings(**values)

    def credentials(self, folder: Path | None = None) -> SfapiCredentials:
        """Fresh credentials in ``folder`` (mode 0600)."""
        id_file, key_file, _ = make_key_files(folder or (self.workdir / "keys"))
        return SfapiCredentials.from_files(id_file, key_file)

    # --- test controls ---------------------------------------------------------------

    def plan_next(self, **plan: Any) -> JobPlan:
        """Make the next submitted job behave as described (see :class:`JobPlan`)."""
        job_plan = JobPlan(**plan)
        self.plans.append(job_plan)
        return job_plan

    def fail_next(self, n: int = 1, *, status: int = 503, path: str | None = None) -> None:
        """Answer the next ``n`` API requests (whose path contains ``path``) with HTTP ``status``.

        Status 0 refuses the connection instead; -1 times out after the request was sent.
        """
        self.faults.extend([(status, path)] * n)

    def expire_tokens(self) -> None:
        """Make every issued token invalid (the API answers 401 until a new one is fetched)."""
        self.valid_tokens.clear()

    def job(self, job_id: str) -> SimJob:
        """The job with ``job_id``."""
        return self.jobs[job_id]

    def calls(self, path_part: str, method: str | None = None) -> int:
        """How many API requests went to a path containing ``path_part``."""
        return sum(1 for r in self.requests if path_part in r.url.path and (method is None or r.method == method))

    # --- handlers --------------------------------------------------------------------

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        if form.get("grant_type") != ["client_credentials"] or not form.get("client_assertion"):
            return httpx.Response(400, json={"error": "invalid_request"})
        if self.token_faults:
            return httpx.Response(self.token_faults.pop(0), json={"error": "invalid_client"})
        self.tokens_issued += 1
        token = f"sim-token-{self.tokens_issued}"
        self.valid_tokens.add(token)
        return httpx.Response(200, json={"access_token": token, "expires_in": 600, "token_type": "Bearer"})

    def _api(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path[len("/api/v1.2/") :]
        for i, (status, part) in enumerate(self.faults):
            if part is None or part in path:
                del self.faults[i]
                if status == 0:
                    raise httpx.ConnectError("simulated: connection refused", request=request)
                if status == -1:
                    raise httpx.ReadTimeout("simulated: no answer in time", request=request)
                return httpx.Response(status, json={"detail": f"simulated HTTP {status}"})
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.valid_tokens:
            return httpx.Response(401, json={"detail": "Could not validate credentials"})
        form = parse_qs(request.content.decode(), keep_blank_values=True) if request.content else {}
        one = {k: v[0] for k, v in form.items()}
        if request.method == "POST" and path == f"compute/jobs/{self.machine}":
            return self._submit(one)
        if request.method == "GET" and path == f"compute/jobs/{self.machine}":
            return self._query(request)
        if request.method == "DELETE" and path.startswith(f"compute/jobs/{self.machine}/"):
            return self._cancel(path.rsplit("/", 1)[1])
        if request.method == "GET" and path.startswith("tasks/"):
            return self._task(path.split("/", 1)[1])
        if request.method == "POST" and path == f"utilities/command/{self.machine}":
            return self._command(one.get("executable", ""))
        prefix = f"utilities/download/{self.machine}/"
        if request.method == "GET" and path.startswith(prefix):
            return self._download(unquote(path[len(prefix) :]))
        return httpx.Response(404, json={"detail": "Not Found"})

    def _new_task(self, result: dict[str, Any], *, submission: bool = False) -> str:
        self._next_task += 1
        task_id = f"task-{self._next_task}"
        self.tasks[task_id] = {"result": result, "polls": 0, "submission": submission}
        return task_id

    def _submit(self, form: dict[str, str]) -> httpx.Response:
        script = form.get("job", "")
        if form.get("isPath") != "false" or not script.startswith("#!"):
            return httpx.Response(200, json={"task_id": None, "status": "ERROR", "error": "bad submission"})
        plan = self.plans.pop(0) if self.plans else JobPlan()
        if plan.sbatch_error:
            task = self._new_task({"status": "error", "error": plan.sbatch_error}, submission=True)
            return httpx.Response(200, json={"task_id": task, "status": "OK", "error": None})
        self._next_job += 1
        job_id = str(self._next_job)
        name = _header(script, "job-name") or "job"
        output = (_header(script, "output") or f"{self.workdir}/slurm-%j.out").replace("%j", job_id)
        self.jobs[job_id] = SimJob(job_id, script, name, output, plan)
        task = self._new_task({"status": "ok", "jobid": job_id}, submission=True)
        return httpx.Response(200, json={"task_id": task, "status": "OK", "error": None})

    def _task(self, task_id: str) -> httpx.Response:
        task = self.tasks.get(task_id)
        if task is None:
            return httpx.Response(404, json={"detail": "task not found"})
        task["polls"] += 1
        if task["submission"] and task["polls"] <= self.task_pending_polls:
            return httpx.Response(200, json={"id": task_id, "status": "new", "result": None})
        return httpx.Response(200, json={"id": task_id, "status": "completed", "result": json.dumps(task["result"])})

    def _query(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        assert params.get("cached") == "false", "status must bypass the SFAPI cache"
        sacct = params.get("sacct") == "true"
        match = re.fullmatch(r"jobid=(\d+)", params.get("kwargs", ""))
        job = self.jobs.get(match.group(1)) if match else None
        if job is None:
            return httpx.Response(200, json={"status": "OK", "output": [], "error": None})
        if not sacct:
            job.polls += 1
        if job.polls <= job.plan.hidden_polls:
            return httpx.Response(200, json={"status": "OK", "output": [], "error": None})
        if not sacct and not job.ended:
            step = job.polls - job.plan.hidden_polls
            if step <= len(job.plan.queue):
                job.state = job.plan.queue[step - 1]
                row = {
                    "jobid": job.job_id,
                    "name": job.name,
                    "state": job.state,
                    "reason": job.plan.reason,
                    "start_time": "2025-01-06T01:00:00" if job.state == "RUNNING" else "N/A",
                }
                return httpx.Response(200, json={"status": "OK", "output": [row], "error": None})
            self._finish(job)
        if not sacct:
            return httpx.Response(200, json={"status": "OK", "output": [], "error": None})
        if not job.ended:
            return httpx.Response(200, json={"status": "OK", "output": [], "error": None})
        rows = [
            {
                "jobid": job.job_id,
                "jobname": job.name,
                "state": job.state,
                "exitcode": job.exit_code,
                "start": "2025-01-06T01:00:00",
                "end": "2025-01-06T01:05:00",
                "reason": "None",
            },
            {"jobid": f"{job.job_id}.batch", "jobname": "batch", "state": job.state, "exitcode": job.exit_code},
            {"jobid": f"{job.job_id}.extern", "jobname": "extern", "state": "COMPLETED", "exitcode": "0:0"},
        ]
        return httpx.Response(200, json={"status": "OK", "output": rows, "error": None})

    def _finish(self, job: SimJob) -> None:
        job.ended = True
        plan = job.plan
        if plan.run:
            job.returncode = self._execute(job)
        if plan.log is not None:
            Path(job.log_path).parent.mkdir(parents=True, exist_ok=True)
            with open(job.log_path, "a", encoding="utf-8") as fh:
                fh.write(plan.log)
        if plan.state is not None:
            job.state = plan.state
            job.exit_code = plan.exit_code or ("0:0" if plan.state == "COMPLETED" else "1:0")
        elif job.returncode is not None:
            job.state = "COMPLETED" if job.returncode == 0 else "FAILED"
            job.exit_code = f"{job.returncode}:0"
        else:
            job.state, job.exit_code = "COMPLETED", plan.exit_code or "0:0"

    def _execute(self, job: SimJob) -> int:
        script = self.workdir / f"job-{job.job_id}.sh"
        script.write_text(job.script)
        log = Path(job.log_path)
        log.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.workdir / "sim-tmp"
        tmp.mkdir(exist_ok=True)
        env = {
            **os.environ,
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "SLURM_JOB_ID": job.job_id,
            "TMPDIR": str(tmp),
            "SIM_HSI_META": str(self.hsi_meta),
            "LC_ALL": "C.UTF-8",
        }
        with open(log, "ab") as out:
            done = subprocess.run(
                ["bash", str(script)], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp, check=False
            )
        return done.returncode

    def _cancel(self, job_id: str) -> httpx.Response:
        job = self.jobs.get(job_id)
        if job is None:
            return httpx.Response(
                200, json={"status": "ERROR", "output": None, "error": f"scancel: error: Invalid job id {job_id}"}
            )
        if job.ended:
            return httpx.Response(
                200,
                json={
                    "status": "ERROR",
                    "output": None,
                    "error": f"scancel: error: Kill job error on job id {job_id}: "
                    "Job/step already completing or completed",
                },
            )
        job.ended = True
        job.state, job.exit_code = "CANCELLED by 12345", "0:15"
        return httpx.Response(200, json={"status": "OK", "output": "", "error": None})

    def _command(self, executable: str) -> httpx.Response:
        self.commands.append(executable)
        words = shlex.split(executable)
        if len(words) == 4 and words[:3] == ["mkdir", "-p", "--"] and words[3].startswith("/"):
            Path(words[3]).mkdir(parents=True, exist_ok=True)
            result = {"status": "ok", "output": "", "error": ""}
        elif len(words) == 5 and words[0] == "tail" and words[1] == "-n" and words[3] == "--":
            path = Path(words[4])
            if not path.is_file():
                result = {
                    "status": "error",
                    "output": "",
                    "error": f"tail: cannot open '{path}': No such file or directory",
                }
            else:
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[-int(words[2]) :]
                result = {"status": "ok", "output": "\n".join(lines) + "\n", "error": ""}
        else:
            result = {
                "status": "error",
                "output": "",
                "error": f"simulated SFAPI runs only mkdir and tail, not {executable!r}",
            }
        task = self._new_task(result)
        return httpx.Response(200, json={"task_id": task, "status": "OK", "error": None})

    def _download(self, path: str) -> httpx.Response:
        file = Path(path)
        if not path.startswith("/") or not file.is_file():
            return httpx.Response(
                200,
                json={
                    "status": "ERROR",
                    "file": None,
                    "is_binary": False,
                    "error": f"{path}: No such file or directory",
                },
            )
        return httpx.Response(
            200,
            json={
                "status": "OK",
                "file": file.read_text(encoding="utf-8", errors="replace"),
                "is_binary": False,
                "error": None,
            },
        )


def echo_kind(**overrides: Any) -> JobKindSettings:
    """A job kind whose "container" copies its input file to its output (``cp``), for tests."""
    values: dict[str, Any] = {
        "image": "registry.test/echo:1",
        "command": ("cp", "--"),
        "inputs": ("input",),
        "outputs": ("output",),
    }
    values.update(overrides)
    return JobKindSettings(**values)


__all__ = [
    "BASE",
    "MACHINE",
    "STUBS",
    "TOKEN_URL",
    "JobPlan",
    "SimJob",
    "SimulatedSfapi",
    "echo_kind",
    "make_key_files",
]
