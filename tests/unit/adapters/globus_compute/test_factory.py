"""Building GlobusComputeJobs from options.globus_compute, and the real SDK client without a login."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
import responses

from splash_core.adapters.globus_compute import (
    GlobusComputeCredentials,
    GlobusComputeJobs,
    build_globus_compute_jobs,
    default_client_factory,
    globus_compute_settings,
)
from splash_core.adapters.globus_compute.client import COMPUTE_SCOPE
from splash_core.domain.errors import ConfigError, CredentialsError
from tests.unit.adapters.globus_compute.simulated import CLIENT_ID, CLIENT_SECRET, ENDPOINT_ID, SimulatedCompute

PRODUCTION = {"endpoint_id": "00000000-0000-4000-8000-000000000832"}


def test_production_options_give_the_example_kinds() -> None:
    """The production example (an endpoint id only) offers reconstruct and multires."""
    settings = globus_compute_settings(PRODUCTION)
    assert settings.endpoint_id == PRODUCTION["endpoint_id"]
    assert sorted(settings.templates) == ["multires", "reconstruct"]
    assert settings.templates["reconstruct"].required == ("input", "output_dir")
    assert settings.templates["multires"].required == ("tiff_dir", "output")
    assert settings.function_id is None
    assert settings.enforce_time_limit


def test_every_key() -> None:
    """Every documented key is read into the settings."""
    settings = globus_compute_settings(
        {
            "endpoint_id": ENDPOINT_ID.upper(),
            "function_id": "f0000000-0000-4000-8000-000000000001",
            "python": "apptainer exec /eagle/als/splash.sif python",
            "templates": {
                "echo": "echo {input}",
                "ptycho": {"command": "ptychocam {input} {output_dir}", "options": {"n_iter": "-i"}},
                "multires": None,
            },
            "prologue": "module load conda",
            "user_endpoint_config": {"account": "als"},
            "resource_specification": {"num_nodes": 2},
            "enforce_time_limit": False,
            "kill_grace_seconds": 5,
            "poll_interval_seconds": 2,
            "poll_max_interval_seconds": "30",
            "poll_backoff": 2,
            "retry_attempts": 3,
            "retry_timeout_seconds": 60,
            "retry_wait_max_seconds": 10,
            "log_tail_lines": 20,
        }
    )
    assert settings.endpoint_id == ENDPOINT_ID
    assert settings.function_id == "f0000000-0000-4000-8000-000000000001"
    assert sorted(settings.templates) == ["echo", "ptycho", "reconstruct"]
    assert settings.templates["reconstruct"].command.startswith("apptainer exec /eagle/als/splash.sif python -m")
    assert settings.templates["ptycho"].options == {"n_iter": "-i"}
    assert settings.prologue == "module load conda"
    assert settings.user_endpoint_config == {"account": "als"}
    assert settings.resource_specification == {"num_nodes": 2}
    assert not settings.enforce_time_limit
    assert (settings.kill_grace_s, settings.poll_interval_s, settings.poll_max_interval_s) == (5, 2, 30)
    assert (settings.poll_backoff, settings.retry_attempts, settings.retry_timeout_s) == (2, 3, 60)
    assert (settings.retry_wait_max_s, settings.log_tail_lines) == (10, 20)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "options.globus_compute.endpoint_id: required"),
        ({"endpoint_id": "alcf-endpoint"}, "options.globus_compute.endpoint_id: expected a UUID, got 'alcf-endpoint'"),
        ({**PRODUCTION, "function_id": "f1"}, "options.globus_compute.function_id: expected a UUID"),
        ({**PRODUCTION, "endpoint": "x"}, "options.globus_compute: unknown key(s) endpoint"),
        (
            {**PRODUCTION, "templates": {"x": "run {a.b}"}},
            "options.globus_compute.templates.x.command: placeholder {a.b}",
        ),
        ({**PRODUCTION, "templates": {"x": "run {a"}}, "options.globus_compute.templates.x.command: "),
        ({**PRODUCTION, "templates": {"x": "run {a!r}"}}, "placeholder {a!r} must be a plain parameter name"),
        ({**PRODUCTION, "templates": {"x": {"cmd": "run"}}}, "options.globus_compute.templates.x: unknown key(s) cmd"),
        ({**PRODUCTION, "templates": {"x": {"options": {}}}}, "options.globus_compute.templates.x.command: required"),
        (
            {**PRODUCTION, "templates": {"x": {"command": "run {a}", "options": {"a": "--a"}}}},
            "options.globus_compute.templates.x: a parameter is used twice",
        ),
        (
            {**PRODUCTION, "templates": {"x": {"command": "run", "flags": {"f": "; rm"}}}},
            "options.globus_compute.templates.x.flags.f: '; rm' is not a command-line flag",
        ),
        ({**PRODUCTION, "templates": ["x"]}, "options.globus_compute.templates: must map job kinds"),
        (
            {**PRODUCTION, "poll_interval_seconds": "soon"},
            "options.globus_compute.poll_interval_seconds: must be a num",
        ),
        ({**PRODUCTION, "poll_interval_seconds": 0}, "options.globus_compute.poll_interval_seconds: must be positive"),
        ({**PRODUCTION, "retry_attempts": 2.5}, "options.globus_compute.retry_attempts: must be a whole number"),
        ({**PRODUCTION, "enforce_time_limit": "yes"}, "options.globus_compute.enforce_time_limit: must be true or fa"),
        ({**PRODUCTION, "user_endpoint_config": "als"}, "options.globus_compute.user_endpoint_config: must be a map"),
        ({**PRODUCTION, "poll_backoff": 0.5}, "options.globus_compute.poll_backoff: must be >= 1"),
    ],
)
def test_invalid_options_name_the_key(options: dict[str, Any], message: str) -> None:
    """Each invalid value is a ConfigError whose message starts with its key path."""
    with pytest.raises(ConfigError) as info:
        globus_compute_settings(options)
    assert message in str(info.value)


def test_every_problem_is_listed() -> None:
    """Several problems are reported together, each with its key."""
    with pytest.raises(ConfigError) as info:
        globus_compute_settings({"endpoint_id": "x", "poll_interval_seconds": "y", "extra": 1})
    problems = info.value.problems
    assert len(problems) == 3
    assert any(p.startswith("options.globus_compute.endpoint_id:") for p in problems)
    assert any(p.startswith("options.globus_compute.poll_interval_seconds:") for p in problems)
    assert any(p.startswith("options.globus_compute: unknown key(s) extra") for p in problems)


def test_build_contacts_nothing() -> None:
    """The builder validates and returns a port; the client is not built yet."""
    built: list[GlobusComputeCredentials] = []

    def factory(credentials: GlobusComputeCredentials) -> SimulatedCompute:
        built.append(credentials)
        raise AssertionError("the client must not be built by the builder")

    jobs = build_globus_compute_jobs(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, options=PRODUCTION, client_factory=factory
    )
    assert isinstance(jobs, GlobusComputeJobs)
    assert jobs.facility == "alcf"
    assert built == []


def test_build_refuses_a_malformed_client_id() -> None:
    """A client id that is not a UUID is refused at build time, without showing the secret."""
    with pytest.raises(CredentialsError, match="not a UUID") as info:
        build_globus_compute_jobs(client_id="my-client", client_secret=CLIENT_SECRET, options=PRODUCTION)
    assert CLIENT_SECRET not in str(info.value)


# --- the real SDK client ------------------------------------------------------------------


def test_default_client_uses_client_credentials_without_login(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The SDK Client gets a client-credentials authorizer: no login, env change, token file or id in logs."""
    from globus_compute_sdk import Client
    from globus_sdk.scopes import ComputeScopes

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("GLOBUS_COMPUTE_CLIENT_ID", raising=False)
    monkeypatch.delenv("GLOBUS_COMPUTE_CLIENT_SECRET", raising=False)
    caplog.set_level(logging.DEBUG)
    environ = dict(os.environ)
    with responses.RequestsMock() as api:
        api.add(
            responses.POST,
            "https://auth.globus.org/v2/oauth2/token",
            json={
                "access_token": "tok",
                "expires_in": 3600,
                "resource_server": "funcx_service",
                "scope": COMPUTE_SCOPE,
                "token_type": "Bearer",
                "other_tokens": [],
            },
        )
        api.add(
            responses.GET,
            "https://compute.api.globus.org/v2/version",
            json={"min_ep_version": "0.0.1", "min_sdk_version": "0.0.1"},
        )
        client = default_client_factory(GlobusComputeCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET))
        token_request = api.calls[0].request
    assert isinstance(client, Client)
    assert client.app is None
    assert client.authorizer is not None
    assert "grant_type=client_credentials" in str(token_request.body)
    assert str(ComputeScopes.all) == COMPUTE_SCOPE
    assert dict(os.environ) == environ
    assert list(tmp_path.iterdir()) == []
    assert "c11e0000…" in caplog.text
    assert CLIENT_ID not in caplog.text
    assert CLIENT_SECRET not in caplog.text
