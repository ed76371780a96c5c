"""Building the SFAPI adapters from configuration options: keys, defaults, errors naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from splash_core.adapters.sfapi import HpssArchive, SfapiJobs
from splash_core.adapters.sfapi.factory import build_hpss_archive, build_sfapi_jobs, hpss_settings, sfapi_settings
from splash_core.domain.errors import ConfigError, CredentialsError

PRODUCTION_LIKE: dict[str, Any] = {
    "machine": "perlmutter",
    "account": "als",
    "qos": "realtime",
    "constraint": "cpu",
    "log_dir": "/global/cfs/cdirs/als/data_mover/logs/splash",
    "images": {
        "reconstruct": "ghcr.io/als-computing/microct:master",
        "multires": "ghcr.io/als-computing/microct:master",
        "ptycho": "ghcr.io/als-computing/ptychocam:latest",
    },
}


def test_production_like_options() -> None:
    """The production example (plus log_dir) gives the three example kinds with its images."""
    settings = sfapi_settings(PRODUCTION_LIKE)
    assert sorted(settings.kinds) == ["multires", "ptycho", "reconstruct"]
    assert settings.kinds["ptycho"].image == "ghcr.io/als-computing/ptychocam:latest"
    assert settings.slurm.qos == "realtime"
    assert settings.machine == "perlmutter"


def test_only_configured_kinds_exist() -> None:
    """Example kinds without a configured image are not offered."""
    settings = sfapi_settings({**PRODUCTION_LIKE, "images": {"reconstruct": "img:1"}})
    assert list(settings.kinds) == ["reconstruct"]


def test_custom_kind_and_tuning() -> None:
    """A kind can be defined in full; seconds and minutes keys convert."""
    options = {
        **PRODUCTION_LIKE,
        "kinds": {
            "xrf": {
                "image": "registry.nersc.gov/als/xrf:2",
                "command": ["xrf-fit"],
                "inputs": ["input"],
                "outputs": ["output"],
                "options": {"model": "--model"},
                "gpus_per_node": 1,
                "max_time_limit_minutes": 120,
                "extra_sbatch": ["--mem=64GB"],
            }
        },
        "poll_interval_seconds": 20,
        "not_found_grace_seconds": 600,
        "max_time_limit_minutes": 720,
        "retry_attempts": 7,
    }
    settings = sfapi_settings(options)
    xrf = settings.kinds["xrf"]
    assert xrf.max_time_limit_s == 7200
    assert xrf.extra_directives == ("--mem=64GB",)
    assert settings.poll_interval_s == 20
    assert settings.not_found_grace_s == 600
    assert settings.slurm.max_time_limit_s == 720 * 60
    assert settings.retry_attempts == 7


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"account": None}, "options.sfapi.account: required"),
        ({"log_dir": None}, "options.sfapi.log_dir: required"),
        ({"acount": "als"}, "unknown key\\(s\\) acount"),
        ({"images": {"xrf": "img:1"}}, "no template for kind\\(s\\) xrf"),
        ({"poll_interval_seconds": "soon"}, "options.sfapi.poll_interval_seconds: must be a number"),
        ({"kinds": {"xrf": {"image": "img:1"}}}, "options.sfapi.kinds.xrf: image and command are required"),
        ({"kinds": {"xrf": {"image": "i:1", "command": "x", "colour": "red"}}}, "kinds.xrf: unknown key"),
        ({"qos": "a b"}, "sfapi.qos"),
    ],
)
def test_bad_options_name_the_key(change: dict[str, Any], message: str) -> None:
    """Each problem is a ConfigError that names the offending key."""
    options = {k: v for k, v in {**PRODUCTION_LIKE, **change}.items() if v is not None}
    with pytest.raises(ConfigError, match=message):
        sfapi_settings(options)


def test_hpss_options() -> None:
    """HPSS options: tape root required, minutes convert, layout placeholders are checked."""
    settings = hpss_settings({"tape_root": "/home/a/alsdev/data_mover", "qos": "xfer", "time_limit_minutes": 60})
    assert settings.time_limit_s == 3600
    with pytest.raises(ConfigError, match=r"options\.hpss\.tape_root: required"):
        hpss_settings({"qos": "xfer"})
    with pytest.raises(ConfigError, match=r"hpss\.layout"):
        hpss_settings({"tape_root": "/home/x", "layout": "{beamline}/{proposal}"})
    with pytest.raises(ConfigError, match=r"options\.hpss\.checksum"):
        hpss_settings({"tape_root": "/home/x", "checksum": "yes"})


def test_builders_read_no_files(tmp_path: Path) -> None:
    """Building the adapters reads no key; using them does."""
    missing_key = tmp_path / "missing.pem"
    jobs = build_sfapi_jobs(client_id="abc", private_key_file=missing_key, options=PRODUCTION_LIKE, facility="nersc")
    assert isinstance(jobs, SfapiJobs)
    merged = {**PRODUCTION_LIKE, "tape_root": "/home/a/alsdev/data_mover", "qos": "xfer"}
    archive = build_hpss_archive(client_id="abc", private_key_file=missing_key, options=merged)
    assert isinstance(archive, HpssArchive)
    with pytest.raises(CredentialsError, match=r"missing\.pem does not exist"):
        jobs.status("1")


def test_hpss_from_merged_options_keeps_jobs_settings() -> None:
    """From merged options the transfer jobs take hpss.qos, and the jobs keep sfapi's account and qos."""
    merged = {**PRODUCTION_LIKE, "tape_root": "/home/a/alsdev/data_mover", "qos": "xfer"}
    archive = build_hpss_archive(client_id="abc", private_key_file="/nonexistent", options=merged)
    assert archive.settings.qos == "xfer"
    assert archive.settings.constraint == ""
    separate = build_hpss_archive(
        client_id="abc",
        private_key_file="/nonexistent",
        options=PRODUCTION_LIKE,
        hpss_options={"tape_root": "/home/a/alsdev/data_mover"},
    )
    assert separate.settings.qos == "xfer"
