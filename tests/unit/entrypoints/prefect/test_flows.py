"""The Prefect flows against a real Prefect API (the session's test harness) on the local facility."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from splash_core.entrypoints.prefect.flows import (
    archive_flow,
    dispatch_flow,
    flight_check_flow,
    new_file_flow,
    prune_flow,
    reconcile_flow,
)
from tests.unit.entrypoints.prefect._support import batch, put, verified_on

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api")]

ROUTE_733 = {"data733", "beegfs733", "nersc733_alsdev_raw"}


def config_of(workspace: Path) -> str:
    return str(workspace / "splash.yaml")


def test_dispatch_flow_moves_a_733_batch_in_one_flow_run(workspace: Path) -> None:
    """A batch of 7.3.3 files ends verified on BeeGFS and NERSC CFS, and the flow run completes."""
    paths = batch(workspace, "run1", 8)

    state = dispatch_flow(beamline="bl733", paths=paths, config=config_of(workspace), return_state=True)

    assert state.is_completed(), state.message
    result = state.result()
    assert result["files"] == 8
    assert result["ok"] is True
    for path in paths:
        assert verified_on(workspace / "splash.yaml", path) == ROUTE_733


def test_a_missing_source_file_fails_the_flow_run_with_the_domain_error(workspace: Path) -> None:
    """The flow run ends FAILED and its message names the missing file and the endpoint."""
    paths = batch(workspace, "run2", 2)

    state = dispatch_flow(
        beamline="bl733", paths=[*paths, "run2/never_written.tif"], config=config_of(workspace), return_state=True
    )

    assert state.is_failed()
    assert state.message is not None
    assert "run2/never_written.tif" in state.message
    assert "data733" in state.message
    assert "SourceNotFound" in state.message


def test_the_flow_run_state_is_recorded_by_the_api(workspace: Path) -> None:
    """What the API stores for a failed dispatch is FAILED with the same message."""
    from prefect import get_client

    state = dispatch_flow(beamline="bl733", paths=["run3/nothing.tif"], config=config_of(workspace), return_state=True)

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    assert run.state is not None
    assert run.state.is_failed()
    assert "run3/nothing.tif" in (run.state.message or "")


def test_export_controlled_data_never_reaches_an_off_site_endpoint(workspace: Path) -> None:
    """Export-controlled files go to BeeGFS only; nothing is written at NERSC."""
    paths = batch(workspace, "secret", 3)

    state = dispatch_flow(
        beamline="bl733", paths=paths, export_controlled=True, config=config_of(workspace), return_state=True
    )

    assert state.is_completed(), state.message
    for path in paths:
        assert verified_on(workspace / "splash.yaml", path) == {"data733", "beegfs733"}
    nersc = workspace / "facilities" / "nersc733_alsdev_raw"
    assert not any(p.is_file() for p in nersc.rglob("*"))


def test_config_comes_from_splash_config_when_not_given(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a ``config`` parameter the flow opens $SPLASH_CONFIG (as deployments set it)."""
    monkeypatch.setenv("SPLASH_CONFIG", config_of(workspace))
    paths = batch(workspace, "env", 2)

    state = dispatch_flow(beamline="bl733", paths=paths, return_state=True)

    assert state.is_completed(), state.message


def test_new_file_flow_runs_no_processing(workspace: Path) -> None:
    """On 8.3.2 only the new-file pipeline runs: the scan is copied, no reconstruction job starts."""
    put(workspace, "spot832", "scans/s1.h5", os.urandom(4096))

    state = new_file_flow(beamline="bl832", paths=["scans/s1.h5"], config=config_of(workspace), return_state=True)

    assert state.is_completed(), state.message
    assert list(state.result()["outcomes"]) == ["new_file"]
    assert "data832_raw" in verified_on(workspace / "splash.yaml", "scans/s1.h5")


def test_prune_flow_prunes_what_the_ledger_says_is_due_and_runs_due_archives(workspace: Path) -> None:
    """After the retention, data733 is pruned (the NERSC copy verified again) and the tape archive runs."""
    paths = batch(workspace, "p2025a", 4)
    assert dispatch_flow(beamline="bl733", paths=paths, config=config_of(workspace), return_state=True).is_completed()
    later = datetime.now(UTC) + timedelta(days=181)

    dry = prune_flow(at=later, dry_run=True, config=config_of(workspace), return_state=True)
    assert dry.is_completed(), dry.message
    assert dry.result()["would_delete"] == 4
    assert all((workspace / "facilities" / "data733" / p).exists() for p in paths)

    state = prune_flow(at=later, config=config_of(workspace), return_state=True)

    assert state.is_completed(), state.message
    result = state.result()
    assert result["deleted"] == 4
    assert any(key.startswith("archive/bl733/") for key in result["tasks_run"])
    assert not any((workspace / "facilities" / "data733" / p).exists() for p in paths)
    assert verified_on(workspace / "splash.yaml", paths[0]) == {"beegfs733", "nersc733_alsdev_raw"}


def test_archive_flow_writes_given_paths_to_tape(workspace: Path) -> None:
    """The NERSC copies of a batch go to the local tape as one bundle."""
    paths = batch(workspace, "p2025b", 2)
    assert dispatch_flow(beamline="bl733", paths=paths, config=config_of(workspace), return_state=True).is_completed()

    state = archive_flow(beamline="bl733", paths=paths, config=config_of(workspace), return_state=True)

    assert state.is_completed(), state.message
    assert state.result()["files"] == 2


def test_reconcile_flow_dispatches_files_that_arrived_unwatched(workspace: Path) -> None:
    """Files written a while ago with no verified copy are found and dispatched."""
    paths = batch(workspace, "missed", 3, age_s=3600)

    state = reconcile_flow(beamline="bl733", config=config_of(workspace), return_state=True)

    assert state.is_completed(), state.message
    assert state.result() == {"missing": 3, "batches": 1}
    assert verified_on(workspace / "splash.yaml", paths[0]) == ROUTE_733


def test_flight_check_flow_sends_the_probe_along_the_route(workspace: Path) -> None:
    """The 7.3.3 route's probe travels data733 -> NERSC and verifies."""
    state = flight_check_flow(route="bl733", config=config_of(workspace), return_state=True)

    assert state.is_completed(), state.message
    assert state.result()["hops"] == ["data733->nersc733_alsdev_raw"]


def test_a_bad_config_path_fails_with_the_config_error(tmp_path: Path) -> None:
    """A flow run given a missing configuration fails and says which file."""
    missing = tmp_path / "nope.yaml"

    state = dispatch_flow(beamline="bl733", paths=["a.tif"], config=str(missing), return_state=True)

    assert state.is_failed()
    assert str(missing) in (state.message or "")
