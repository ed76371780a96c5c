"""End to end with Prefect: `prefect server start`, `splash prefect deploy`, a process worker, a batch.

Everything runs as it would in production, on 127.0.0.1 and the local facility: the server with
its own PREFECT_HOME, the deployments created by the splash CLI, a worker of the bl733 dispatch
pool, and a batch of files handed over with ``run_deployment``. Every wait is bounded and every
process started here is stopped (its whole process group) in a ``finally``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from splash_core.entrypoints.profiles import write_local_profile

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

BIN = Path(sys.executable).parent
SERVER_START_S = 240.0  # a fresh server migrates its database first; slow on a busy machine
DEPLOY_S = 180.0
FLOW_RUN_S = 300.0
FILES = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"({path.name}: no output)"
    return f"--- {path.name} ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def process(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` in its own process group, output to ``log``; stop the group on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)


def wait_for(
    what: str, check: Callable[[], bool], timeout: float, logs: list[Path], procs: list[subprocess.Popen[bytes]]
) -> None:
    """Poll ``check`` until it is true; fail with the logs when ``timeout`` passes or a process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            pytest.fail(f"{what}: a process exited early ({dead[0].args})\n" + "\n".join(tail(p) for p in logs))
        time.sleep(0.5)
    pytest.fail(f"{what}: not done after {timeout:.0f} s\n" + "\n".join(tail(p) for p in logs))


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_batch_goes_through_server_deployment_and_worker(tmp_path: Path) -> None:
    """20 files handed to splash-dispatch/bl733-dispatch end verified on BeeGFS and NERSC CFS."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    config = write_local_profile(tmp_path / "workspace")
    source = tmp_path / "workspace" / "facilities" / "data733"
    paths = [f"e2e/frame_{i:03d}.tif" for i in range(FILES)]
    for i, rel in enumerate(paths):
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes(os.urandom(4096 + i))
    url = f"http://127.0.0.1:{free_port()}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "SPLASH_CONFIG"}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_API_URL=url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_WORKER_PREFETCH_SECONDS="5",
    )
    server_log, worker_log = tmp_path / "server.log", tmp_path / "worker.log"
    logs = [server_log, worker_log]

    with ExitStack() as stack:
        port = url.rsplit(":", 1)[1].split("/")[0]
        server = stack.enter_context(
            process(
                [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", port, "--no-services"],
                env,
                server_log,
            )
        )
        wait_for("prefect server health", lambda: healthy(url), SERVER_START_S, logs, [server])

        deploy = subprocess.run(
            [str(BIN / "splash"), "prefect", "deploy", "bl733", "--config", str(config)],
            env={**env, "COLUMNS": "200"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=DEPLOY_S,
            check=False,
        )
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        assert "deployment splash-dispatch/bl733-dispatch: created" in deploy.stdout

        worker = stack.enter_context(
            process(
                [str(BIN / "prefect"), "worker", "start", "--pool", "splash-bl733-dispatch", "--type", "process"],
                env,
                worker_log,
            )
        )
        with temporary_settings(updates={PREFECT_API_URL: url}):
            run = run_deployment(
                "splash-dispatch/bl733-dispatch",
                parameters={"beamline": "bl733", "paths": paths},
                timeout=0,
                as_subflow=False,
                _sync=True,
            )
            final: list[Any] = []

            def finished() -> bool:
                with get_client(sync_client=True) as client:
                    state = client.read_flow_run(run.id).state
                if state is not None and state.is_final():
                    final.append(state)
                    return True
                return False

            wait_for("the dispatch flow run", finished, FLOW_RUN_S, logs, [server, worker])

    state = final[0]
    assert state.is_completed(), f"{state}\n" + "\n".join(tail(p) for p in logs)
    from splash_core.entrypoints.api import open_config

    splash = open_config(config)
    for path in paths:
        assert {loc.endpoint for loc in splash.status(path).locations} >= {"beegfs733", "nersc733_alsdev_raw"}, path
