"""A Prefect API for the whole session (``prefect_test_harness``) and local-profile workspaces.

The environment is set before ``prefect`` is first imported: its own home folder (nothing is
written to ~/.prefect), no analytics, no API URL inherited from the developer's shell.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_HOME = tempfile.mkdtemp(prefix="splash-prefect-home-")
atexit.register(shutil.rmtree, _HOME, True)
os.environ["PREFECT_HOME"] = _HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_SERVER_UI_ENABLED"] = "false"
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PREFECT_PROFILE", None)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """The URL of a Prefect API on a temporary database, shared by every test of the session."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield str(PREFECT_API_URL.value())


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh local-profile workspace (``splash.yaml`` inside); ``SPLASH_CONFIG`` is unset."""
    from splash_core.entrypoints.profiles import write_local_profile

    monkeypatch.delenv("SPLASH_CONFIG", raising=False)
    write_local_profile(tmp_path)
    return tmp_path
