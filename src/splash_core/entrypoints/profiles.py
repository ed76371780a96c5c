"""Configuration profiles: the production example and the embedded local facility.

The local profile is derived from the production example, so both always name
the same endpoints and beamlines: every endpoint becomes a folder
``WORKSPACE/facilities/<endpoint>/``, every adapter the local one.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from splash_core.domain.errors import InvalidInput

LOCAL_JOB_LIMIT_MINUTES = 10.0


def production_template() -> str:
    """The text of the shipped production example configuration."""
    return resources.files("splash_core.entrypoints").joinpath("templates/production.yaml").read_text("utf-8")


def production_dict() -> dict[str, Any]:
    """The production example as plain data."""
    data = yaml.safe_load(production_template())
    assert isinstance(data, dict)
    return data


def local_profile(workspace: Path) -> dict[str, Any]:
    """A configuration for the embedded local facility rooted at ``workspace``.

    Args:
        workspace: an absolute folder; endpoints live under ``workspace/facilities``.
    """
    workspace = workspace.resolve()
    data = copy.deepcopy(production_dict())
    data["adapters"] = {
        "transfer": "local",
        "storage": "local",
        "hpc": dict.fromkeys(data["adapters"].get("hpc", {}), "local"),
        "tape": "local",
        "catalog": "local",
        "scheduler": "local",
        "ledger": "sqlite",
    }
    data["workspace"] = str(workspace)
    data["secrets"] = {}
    data["options"] = {"local": {"tape_root": str(workspace / "facilities" / "hpss")}}
    facilities = workspace / "facilities"
    for name, endpoint in data["endpoints"].items():
        endpoint["root_path"] = str(facilities / name)
        endpoint.pop("collection_id", None)
    for beamline in data["beamlines"].values():
        for processing in beamline.get("processing", {}).values():
            for job in processing["jobs"]:
                job["time_limit_minutes"] = min(job["time_limit_minutes"], LOCAL_JOB_LIMIT_MINUTES)
    return data


def write_local_profile(workspace: Path, *, force: bool = False) -> Path:
    """Write ``workspace/splash.yaml`` for the local profile and create every endpoint folder.

    Raises:
        InvalidInput: the workspace is a file, or a config exists and ``force`` is false.
    """
    workspace = workspace.expanduser().resolve()
    if workspace.exists() and not workspace.is_dir():
        raise InvalidInput(f"workspace {workspace} exists and is not a folder; choose another --workspace")
    config_path = workspace / "splash.yaml"
    if config_path.exists() and not force:
        raise InvalidInput(f"{config_path} already exists; pass --force to overwrite it")
    data = local_profile(workspace)
    for endpoint in data["endpoints"].values():
        Path(endpoint["root_path"]).mkdir(parents=True, exist_ok=True)
    Path(data["options"]["local"]["tape_root"]).mkdir(parents=True, exist_ok=True)
    header = (
        "# splash_core local profile: every endpoint is a folder under facilities/,\n"
        "# every HPC job a subprocess, ledger/catalog/scheduler one SQLite file (splash.db).\n"
    )
    tmp = config_path.with_suffix(".yaml.tmp")
    tmp.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    tmp.replace(config_path)
    return config_path
