"""Configuration loading: the shipped example is valid, broken files are rejected with key paths."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from splash_core.domain.errors import ConfigError
from splash_core.domain.models import Site
from splash_core.entrypoints.cli import app
from splash_core.entrypoints.config import find_config, load_settings, resolve_secret, settings_from_dict
from splash_core.entrypoints.profiles import local_profile, production_dict, write_local_profile

SECRETS_ENV = {
    "GLOBUS_CLIENT_ID": "id-123",
    "GLOBUS_CLIENT_SECRET": "s3cr3t-value",
    "SCICAT_USERNAME": "ingestor",
    "SCICAT_PASSWORD": "pw",
}


@pytest.fixture
def prod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The production example with its secrets made available."""
    for key, value in SECRETS_ENV.items():
        monkeypatch.setenv(key, value)
    data = production_dict()
    for name in ("sfapi_client_id", "sfapi_private_key"):
        secret = tmp_path / name
        secret.write_text("value")
        secret.chmod(0o600)
        data["secrets"][name] = {"file": str(secret)}
    return data


def problems_of(data: dict[str, Any], tmp_path: Path, **kw: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        settings_from_dict(data, base_dir=tmp_path, **kw)
    return info.value.problems


def test_shipped_production_example_is_valid(prod: dict[str, Any], tmp_path: Path) -> None:
    """The shipped production example loads into typed settings."""
    settings = settings_from_dict(prod, base_dir=tmp_path)
    assert settings.endpoint("spot832").site is Site.ON_SITE
    assert settings.endpoint("nersc832_alsdev_raw").off_site
    policies = settings.beamline("bl832").retention_policies()
    assert {(p.endpoint, p.days, p.check_endpoint) for p in policies} == {
        ("spot832", 1.0, "data832_raw"),
        ("data832_raw", 35.0, "nersc832_alsdev_raw"),
    }


def test_local_profile_is_valid_and_rooted_in_workspace(tmp_path: Path) -> None:
    """The local profile names the same endpoints, rooted under the workspace."""
    path = write_local_profile(tmp_path / "ws")
    settings = load_settings(path)
    assert set(settings.endpoints) == set(production_dict()["endpoints"])
    for endpoint in settings.endpoints.values():
        assert Path(endpoint.root_path).is_dir()
        assert Path(endpoint.root_path).is_relative_to(tmp_path / "ws" / "facilities")


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    """A second init keeps the existing file unless --force is given."""
    write_local_profile(tmp_path)
    (tmp_path / "splash.yaml").write_text("# mine\n")
    result = CliRunner().invoke(app, ["init", "--workspace", str(tmp_path)])
    assert result.exit_code == 2
    assert (tmp_path / "splash.yaml").read_text() == "# mine\n"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda d: d["beamlines"]["bl832"].pop("source"),
            "beamlines.bl832.source: required key missing",
            id="missing-key",
        ),
        pytest.param(
            lambda d: d["endpoints"]["spot832"].update(colour="red"),
            "endpoints.spot832: unknown key(s): colour",
            id="unknown-key",
        ),
        pytest.param(
            lambda d: d["transfer"].update(max_files_per_batch="many"),
            'transfer.max_files_per_batch: expected an integer, got "many"',
            id="wrong-type",
        ),
        pytest.param(
            lambda d: d["beamlines"]["bl832"]["retention"].update(spot832="x"),
            'beamlines.bl832.retention.spot832: expected a number of days >= 0, got "x"',
            id="bad-days",
        ),
        pytest.param(
            lambda d: d["beamlines"]["bl832"]["retention"].update(spot832=-1),
            "beamlines.bl832.retention.spot832: expected a number of days >= 0, got -1",
            id="negative",
        ),
        pytest.param(
            lambda d: d["beamlines"]["bl733"]["copies"].append({"from": "data733", "to": "nowhere"}),
            "beamlines.bl733.copies[2].to: unknown endpoint 'nowhere'",
            id="unknown-endpoint",
        ),
        pytest.param(
            lambda d: d["endpoints"]["data832"].update(collection_id="not-a-uuid"),
            "endpoints.data832.collection_id: expected a UUID, got 'not-a-uuid'",
            id="bad-uuid",
        ),
        pytest.param(
            lambda d: d["endpoints"]["data832"].update(root_path="data"),
            "endpoints.data832.root_path: expected an absolute path, got 'data'",
            id="relative-root",
        ),
        pytest.param(
            lambda d: d["secrets"].pop("globus_client_secret"),
            "secrets.globus_client_secret: required by the globus adapter but not configured",
            id="secret-missing",
        ),
        pytest.param(
            lambda d: d["secrets"].update(sfapi_private_key={"file": "/nonexistent/key.pem"}),
            "secrets.sfapi_private_key: secret file /nonexistent/key.pem does not exist",
            id="secret-file-unreadable",
        ),
        pytest.param(
            lambda d: d["endpoints"].update(data832_copy=dict(d["endpoints"]["data832"])),
            "endpoints.data832_copy: same collection and root as endpoints.data832 (duplicate endpoint)",
            id="duplicate-endpoint",
        ),
        pytest.param(
            lambda d: d["adapters"].update(transfer="rsync"),
            "adapters.transfer: unknown adapter 'rsync'",
            id="unknown-adapter",
        ),
        pytest.param(
            lambda d: d["facilities"]["als"].update(site="nearby"),
            "facilities.als.site: expected one of on-site, off-site, got 'nearby'",
            id="bad-enum",
        ),
        pytest.param(
            lambda d: d["beamlines"]["bl832"]["decisions"].update(olcf_recon=True),
            "beamlines.bl832.decisions.olcf_recon: no pipeline of that name",
            id="unknown-pipeline",
        ),
        pytest.param(
            lambda d: d["beamlines"]["bl832"]["retention"].update(data832_scratch=3),
            "beamlines.bl832.retention.data832_scratch: no copy leaves data832_scratch",
            id="retention-without-check-copy",
        ),
    ],
)
def test_broken_config_is_rejected_with_key_path(
    prod: dict[str, Any], tmp_path: Path, mutate: Any, expected: str
) -> None:
    """Each kind of broken configuration names its key path and what is wrong."""
    data = copy.deepcopy(prod)
    mutate(data)
    problems = problems_of(data, tmp_path)
    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_is_listed_at_once(prod: dict[str, Any], tmp_path: Path) -> None:
    """Several problems in one file are all reported, not just the first."""
    data = copy.deepcopy(prod)
    data["endpoints"]["data832"]["root_path"] = "rel"
    data["beamlines"]["bl832"]["source"] = "ghost"
    data["transfer"]["timeout_seconds"] = -5
    problems = problems_of(data, tmp_path)
    assert len(problems) >= 3


def test_duplicate_yaml_keys_are_rejected(tmp_path: Path) -> None:
    """A name defined twice in the YAML file is an error, not a silent override."""
    text = yaml.safe_dump(local_profile(tmp_path), sort_keys=False)
    text = text.replace("  spot832:\n", "  spot832:\n    facility: als\n    root_path: /x\n  spot832:\n", 1)
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="duplicate key 'spot832'"):
        load_settings(path)


@pytest.mark.parametrize("content", [None, "", "- a list\n", "key: [unclosed\n"])
def test_unreadable_or_malformed_files_are_rejected(tmp_path: Path, content: str | None) -> None:
    """A missing, empty, non-mapping or malformed file gives a ConfigError naming the file."""
    path = tmp_path / "c.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=str(path)):
        load_settings(path)


def test_config_is_found_by_flag_then_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--config wins over SPLASH_CONFIG; with neither, the error says how to give one."""
    monkeypatch.setenv("SPLASH_CONFIG", str(tmp_path / "env.yaml"))
    assert find_config(tmp_path / "flag.yaml") == tmp_path / "flag.yaml"
    assert find_config(None) == tmp_path / "env.yaml"
    monkeypatch.delenv("SPLASH_CONFIG")
    with pytest.raises(ConfigError, match="--config"):
        find_config(None)


def test_workspace_is_relative_to_the_config_file_not_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative workspace resolves against the config file's folder."""
    data = local_profile(tmp_path)
    data["workspace"] = "state"
    path = tmp_path / "conf" / "splash.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(data))
    monkeypatch.chdir("/")
    assert load_settings(path).workspace == str(tmp_path / "conf" / "state")


def test_secret_values_never_appear_in_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Problems name the variable or file, never a secret's value."""
    monkeypatch.setenv("GLOBUS_CLIENT_ID", "visible-id")
    monkeypatch.setenv("GLOBUS_CLIENT_SECRET", "TOPSECRET")
    data = production_dict()
    problems = problems_of(data, tmp_path)
    assert not any("TOPSECRET" in p for p in problems)


def test_resolve_secret_reads_env_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets come from environment variables or files."""
    from splash_core.domain.settings import SecretRef, SecretSource

    monkeypatch.setenv("MY_SECRET", "abc")
    (tmp_path / "f").write_text("xyz\n")
    assert resolve_secret(SecretRef(SecretSource.ENV, "MY_SECRET")) == "abc"
    assert resolve_secret(SecretRef(SecretSource.FILE, str(tmp_path / "f"))) == "xyz"


class TestConfigCheckCommand:
    """`splash config check` exit codes and output."""

    def test_valid_config_exits_0(self, tmp_path: Path) -> None:
        """A valid config exits 0 and says so."""
        path = write_local_profile(tmp_path)
        result = CliRunner().invoke(app, ["config", "check", "--config", str(path)])
        assert result.exit_code == 0, result.output
        assert "valid" in result.output

    def test_invalid_config_exits_2_listing_every_problem(self, tmp_path: Path) -> None:
        """An invalid config exits 2 and lists each problem with its key path."""
        data = local_profile(tmp_path)
        data["beamlines"]["bl832"]["retention"]["spot832"] = "x"
        data["endpoints"]["data832"]["colour"] = "blue"
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(data))
        result = CliRunner().invoke(app, ["config", "check", "--config", str(path)])
        assert result.exit_code == 2
        assert 'beamlines.bl832.retention.spot832: expected a number of days >= 0, got "x"' in result.output
        assert "endpoints.data832: unknown key(s): colour" in result.output

    def test_env_var_is_used_when_no_flag(self, tmp_path: Path) -> None:
        """SPLASH_CONFIG is used when --config is absent."""
        path = write_local_profile(tmp_path)
        result = CliRunner().invoke(app, ["config", "check"], env={**os.environ, "SPLASH_CONFIG": str(path)})
        assert result.exit_code == 0, result.output


def test_config_check_validates_adapter_options(prod: dict[str, Any], tmp_path: Path) -> None:
    """Options of the selected adapters are checked too (unknown keys, missing required ones)."""
    data = copy.deepcopy(prod)
    data["options"]["globus"]["poll_every"] = 3
    del data["options"]["sfapi"]["log_dir"]
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["config", "check", "--config", str(path)], env={"COLUMNS": "250"})
    assert result.exit_code == 2, result.output
    assert "options.globus" in result.output
    assert "poll_every" in result.output
    assert "options.sfapi.log_dir" in result.output


def test_shipped_production_example_passes_config_check(prod: dict[str, Any], tmp_path: Path) -> None:
    """`splash config check` accepts the shipped production example (secrets made available)."""
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(prod))
    result = CliRunner().invoke(app, ["config", "check", "--config", str(path)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
