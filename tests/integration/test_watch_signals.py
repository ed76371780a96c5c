"""`splash watch` as a process: it dispatches files as they arrive and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from splash_core.entrypoints.api import open_config
from splash_core.entrypoints.profiles import write_local_profile

pytestmark = pytest.mark.slow

SPLASH = Path(sys.executable).parent / "splash"


def test_watch_dispatches_arrivals_and_stops_on_sigterm(tmp_path: Path) -> None:
    """Files written while watching end verified; SIGTERM ends the process with exit code 0."""
    config = write_local_profile(tmp_path)
    source = tmp_path / "facilities" / "data733"
    env = {k: v for k, v in os.environ.items() if k != "SPLASH_CONFIG"}
    cmd = [str(SPLASH), "watch", "bl733", "--via", "direct", "--settle-seconds", "0.5", "--batch-seconds", "0.5"]
    err_log = tmp_path / "watch.err"
    with err_log.open("wb") as err:
        proc = subprocess.Popen(
            [*cmd, "--config", str(config)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while b"watching" not in err_log.read_bytes() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert b"watching" in err_log.read_bytes(), err_log.read_text()
        paths = [f"live/img_{i}.tif" for i in range(5)]
        for rel in paths:
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            (source / rel).write_bytes(os.urandom(1000))

        splash = open_config(config)

        def verified() -> bool:
            return all("nersc733_alsdev_raw" in {loc.endpoint for loc in splash.status(p).locations} for p in paths)

        deadline = time.monotonic() + 60
        while not verified() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert verified(), err_log.read_text()

        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
    assert proc.returncode == 0, err_log.read_text()
    assert b"5 file(s) dispatched" in out
    assert b"SIGTERM: stopping" in err_log.read_bytes()
