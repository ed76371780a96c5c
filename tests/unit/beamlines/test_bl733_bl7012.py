"""7.3.3 batches and tape archive, 7.0.1.2 ptychography, and a beamline that is only configuration."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from splash_core.beamlines import BEAMLINES, GENERIC, dispatch, module_for, run_scheduled_task
from splash_core.domain.errors import InvalidInput
from splash_core.domain.events import TapeArchived
from splash_core.domain.services.dispatch import OutcomeState
from splash_core.domain.settings import BeamlineSettings, CopySettings
from tests.unit.beamlines._support import facility, production_settings, services


def test_bl733_batch_of_2000_files_uses_few_tasks() -> None:
    """2,000 small files make at most ceil(2000 / max_files_per_batch) transfer tasks per hop."""
    settings = production_settings()
    fac = facility(settings)
    paths = [f"ALS-11111/scan_{i:04d}.tif" for i in range(2000)]
    for path in paths:
        fac.put("data733", path, path.encode())
    report = dispatch(services(settings, fac), "bl733", paths)
    assert report.ok, [str(o) for o in report.outcomes]
    per_hop = Counter((r.source.name, r.destination.name) for r in fac.transfer.requests)
    limit = math.ceil(2000 / settings.transfer.max_files_per_batch)
    assert set(per_hop) == {("data733", "beegfs733"), ("data733", "nersc733_alsdev_raw")}
    assert all(n <= limit for n in per_hop.values())
    assert len(fac.ledger.verified_paths("nersc733_alsdev_raw")) == 2000
    [record] = fac.catalog.records.values()
    assert len(record.files) == 2000


def test_bl733_prunes_against_nersc_and_archives_to_tape() -> None:
    """data733 is pruned against the NERSC copy, and the scheduled archive puts the NERSC copy on tape."""
    settings = production_settings()
    fac = facility(settings)
    paths = [f"ALS-22222/run/img_{i}.tif" for i in range(3)]
    for path in paths:
        fac.put("data733", path, b"pixels" * 10)
    svc = services(settings, fac)
    assert dispatch(svc, "bl733", paths).ok
    assert {(p.endpoint, p.check_endpoint) for p in fac.ledger.pending_prunes()} == {("data733", "nersc733_alsdev_raw")}
    [archive] = [t for t in fac.scheduler.tasks.values() if t.kind == "archive"]
    assert (archive.run_at - fac.clock.now()).days in (29, 30)

    report = run_scheduled_task(svc, archive)
    assert report.ok
    assert [r.bundle for r in report.receipts] == ["ALS-22222_2025-1.tar"]
    assert {e.path.value for e in fac.ledger.of_type(TapeArchived)} == set(paths)
    [catalog_id] = fac.catalog.records
    assert fac.catalog.locations[catalog_id] == ["/home/a/alsdev/data_mover/ALS-22222_2025-1.tar"]
    assert archive.key in fac.scheduler.done


def test_scheduled_prune_deletes_only_after_its_due_time() -> None:
    """Running the prune task when due deletes the data733 copy once the NERSC copy checks out."""
    settings = production_settings()
    fac = facility(settings)
    fac.put("data733", "ALS-1/a.tif", b"a")
    svc = services(settings, fac)
    dispatch(svc, "bl733", ["ALS-1/a.tif"])
    [prune] = [t for t in fac.scheduler.tasks.values() if t.kind == "prune"]
    run_scheduled_task(svc, prune)
    assert fac.exists("data733", "ALS-1/a.tif")
    fac.clock.advance_days(181)
    run_scheduled_task(svc, prune)
    assert not fac.exists("data733", "ALS-1/a.tif")
    assert fac.exists("nersc733_alsdev_raw", "ALS-1/a.tif")
    assert prune.key in fac.scheduler.done


def test_bl7012_runs_ptychography_at_nersc() -> None:
    """A COSMIC file goes to NERSC and a ptycho job runs on it, leaving its output next to it."""
    settings = production_settings()
    fac = facility(settings)
    fac.put("data7012", "2025/01/06/NS_250106001.cxi", b"frames")
    report = dispatch(
        services(settings, fac), "bl7012", ["2025/01/06/NS_250106001.cxi"], parameters={"engine": "cdtools"}
    )
    assert report.ok, [str(o) for o in report.outcomes]
    [job] = fac.hpc["nersc"].submitted
    assert job.kind == "ptycho"
    assert job.parameters["engine"] == "cdtools"
    assert job.parameters["input"] == "/global/cfs/cdirs/als/gsharing/data_mover/7012/2025/01/06/NS_250106001.cxi"
    assert fac.exists("nersc7012", "NS_250106001/ptychoNS_250106001/object.npy")
    assert {r.kind for r in fac.catalog.records.values()} == {"raw", "ptycho_recon"}


def test_registry_and_generic_fallback() -> None:
    """The three beamlines have modules; any other id gets the generic composition and still works."""
    assert set(BEAMLINES) == {"bl832", "bl733", "bl7012"}
    assert module_for("bl531") is GENERIC
    base = production_settings()
    bl531 = BeamlineSettings(
        id="bl531",
        title="5.3.1",
        source="data733",
        copies=(CopySettings("data733", "nersc733_alsdev_raw"),),
        retention={"data733": 180},
    )
    settings = type(base)(
        facilities=base.facilities, endpoints=base.endpoints, beamlines={**base.beamlines, "bl531": bl531}
    )
    fac = facility(settings)
    fac.put("data733", "x/y.dat", b"y")
    report = dispatch(services(settings, fac), "bl531", ["x/y.dat"])
    assert [(o.name, o.state) for o in report.outcomes] == [("new_file", OutcomeState.OK)]
    assert fac.exists("nersc733_alsdev_raw", "x/y.dat")


def test_bad_paths_are_refused_before_anything_moves() -> None:
    """An absolute or escaping path is refused and nothing is transferred."""
    settings = production_settings()
    fac = facility(settings)
    for bad in ("/etc/passwd", "../x.tif", ""):
        with pytest.raises(InvalidInput):
            dispatch(services(settings, fac), "bl733", [bad])
    with pytest.raises(InvalidInput, match="no paths"):
        dispatch(services(settings, fac), "bl733", [])
    assert fac.transfer.requests == []
