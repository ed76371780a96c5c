"""nox sessions: the same checks as `make test`, plus live contract tests and benchmarks.

Sessions reuse the locked environment (`uv sync --locked`), so nox and make test the same versions.
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "imports", "tests"]


def _sync(session: nox.Session) -> None:
    session.run_install(
        "uv",
        "sync",
        "--locked",
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    _sync(session)
    session.run("ruff", "check", "src", "tests", "bench", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "bench", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy, strict on src/."""
    _sync(session)
    session.run("mypy")


@nox.session
def imports(session: nox.Session) -> None:
    """import-linter layer contracts."""
    _sync(session)
    session.run("lint-imports")


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and contract tests, offline, with coverage."""
    _sync(session)
    session.run("pytest", "--cov", "--cov-report=term", "-m", "not live", *session.posargs)


@nox.session
def live(session: nox.Session) -> None:
    """Contract tests against real Globus / NERSC services (skipped without credentials)."""
    _sync(session)
    needed = {
        "Globus": ["GLOBUS_CLIENT_ID", "GLOBUS_CLIENT_SECRET", "SPLASH_LIVE_GLOBUS_SRC_COLLECTION"],
        "NERSC SFAPI": ["SFAPI_CLIENT_ID_FILE", "SFAPI_PRIVATE_KEY_FILE"],
    }
    for service, names in needed.items():
        missing = [n for n in names if not os.environ.get(n)]
        if missing:
            session.log(f"{service} live tests will be skipped: set {', '.join(missing)} to enable them")
    session.run("pytest", "-m", "live", "-rs", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (ratios against cp, find, one-task-per-file); `-- --mode quick` for a smoke run."""
    _sync(session)
    session.run("python", "-m", "bench", *(session.posargs or ["--mode", "full"]))
