"""The composition root: adapters chosen by configuration, replaceable with fakes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from splash_core.adapters.local import LocalStorage, LocalTransfer, SqliteCatalog, SqliteLedger, SqliteScheduler
from splash_core.adapters.local.jobs import LocalJobs
from splash_core.adapters.local.tape import LocalTape
from splash_core.domain.errors import ConfigError, ExportControlViolation, InvalidInput
from splash_core.domain.paths import RelPath
from splash_core.entrypoints.api import Splash
from splash_core.entrypoints.config import load_settings, settings_from_dict
from splash_core.entrypoints.container import build_container
from splash_core.entrypoints.profiles import local_profile, write_local_profile
from tests.fakes import FakeFacility


@pytest.fixture
def splash_local(tmp_path: Path) -> Splash:
    """A Splash on a fresh local profile."""
    return Splash(load_settings(write_local_profile(tmp_path)))


def test_local_profile_selects_the_local_adapters(splash_local: Splash) -> None:
    """`local` in the config gives the embedded facility for every port."""
    assert isinstance(splash_local.transfer, LocalTransfer)
    assert isinstance(splash_local.storage, LocalStorage)
    assert isinstance(splash_local.ledger, SqliteLedger)
    assert isinstance(splash_local.catalog, SqliteCatalog)
    assert isinstance(splash_local.scheduler, SqliteScheduler)
    assert isinstance(splash_local.tape(), LocalTape)
    assert set(splash_local.hpc) == {"nersc", "alcf"}
    assert all(isinstance(port, LocalJobs) for port in splash_local.hpc.values())


def test_singletons_share_one_database(splash_local: Splash) -> None:
    """The ledger, catalog and scheduler are built once per container."""
    assert splash_local.ledger is splash_local.ledger
    assert splash_local.container.database() is splash_local.container.database()


def test_local_profile_imports_no_sdk(tmp_path: Path) -> None:
    """Building every local adapter never imports globus_sdk, sfapi_client or prefect (checked in a fresh process)."""
    config = write_local_profile(tmp_path)
    code = (
        "import sys\n"
        "from splash_core import open_config\n"
        f"open_config({str(config)!r}).services()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'globus_sdk', 'sfapi_client', 'prefect', "
        "'globus_compute_sdk'})\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_missing_workspace_is_a_config_error(tmp_path: Path) -> None:
    """The local ledger needs a workspace; its absence names the key."""
    data = local_profile(tmp_path)
    del data["workspace"]
    splash = Splash(settings_from_dict(data, base_dir=tmp_path))
    with pytest.raises(ConfigError, match="workspace"):
        _ = splash.ledger


def test_ports_can_be_overridden_with_fakes(tmp_path: Path) -> None:
    """Tests replace adapters with fakes through provider overrides; the API runs on them."""
    settings = load_settings(write_local_profile(tmp_path))
    fake = FakeFacility()
    container = build_container(settings)
    container.transfer.override(fake.transfer)
    container.storage.override(fake.storage)
    container.ledger.override(fake.ledger)
    container.clock.override(fake.clock)
    splash = Splash(settings, container)
    src, dst = settings.endpoint("data832_raw"), settings.endpoint("nersc832_alsdev_raw")
    fake.storage.put(src, "scans/a.h5", b"abc" * 100)
    report = splash.move("data832_raw", "nersc832_alsdev_raw", ["scans/a.h5"])
    assert report.files == 1
    assert fake.storage.read(dst, "scans/a.h5") == b"abc" * 100
    assert fake.ledger.verified_copy("nersc832_alsdev_raw", RelPath("scans/a.h5")) is not None
    assert fake.transfer.tasks_created == 1
    with pytest.raises(ExportControlViolation):
        splash.move("data832_raw", "nersc832_alsdev_raw", ["scans/a.h5"], export_controlled=True)
    with pytest.raises(InvalidInput):
        splash.move("data832_raw", "nersc832_alsdev_raw", [])


def test_production_profile_wires_every_facility_adapter_without_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped production example builds Globus, SFAPI, Globus Compute, HPSS and SciCat adapters lazily."""
    from splash_core.adapters.globus import GlobusStorage, GlobusTransfer
    from splash_core.adapters.globus_compute import GlobusComputeJobs
    from splash_core.adapters.scicat import SciCatCatalog
    from splash_core.adapters.sfapi import HpssArchive, SfapiJobs
    from splash_core.entrypoints.config import settings_from_dict
    from splash_core.entrypoints.profiles import production_dict

    monkeypatch.setenv("GLOBUS_CLIENT_ID", "6f1c8a8e-1111-4222-8333-944445555666")
    monkeypatch.setenv("GLOBUS_CLIENT_SECRET", "not-a-real-secret")
    monkeypatch.setenv("SCICAT_USERNAME", "ingestor")
    monkeypatch.setenv("SCICAT_PASSWORD", "pw")
    data = production_dict()
    for name in ("sfapi_client_id", "sfapi_private_key"):
        secret = tmp_path / name
        secret.write_text("value")
        secret.chmod(0o600)
        data["secrets"][name] = {"file": str(secret)}
    data["workspace"] = str(tmp_path / "ws")
    data["adapters"]["scheduler"] = "local"
    splash = Splash(settings_from_dict(data, base_dir=tmp_path))
    services = splash.services()
    assert isinstance(services.transfer, GlobusTransfer)
    assert isinstance(services.storage, GlobusStorage)
    assert isinstance(services.hpc["nersc"], SfapiJobs)
    assert isinstance(services.hpc["alcf"], GlobusComputeJobs)
    assert isinstance(services.tape, HpssArchive)
    assert isinstance(services.catalog, SciCatCatalog)
