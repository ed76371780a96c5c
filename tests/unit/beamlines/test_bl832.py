"""8.3.2 end to end on fakes: new file along the route, catalogue, prunes, NERSC reconstruction."""

from __future__ import annotations

import pytest

from splash_core.beamlines import dispatch, dispatcher_for
from splash_core.domain.errors import UnknownBeamline
from splash_core.domain.events import JobFinished
from splash_core.domain.models import JobState
from splash_core.domain.paths import RelPath
from splash_core.domain.services.dispatch import OutcomeState
from tests.unit.beamlines._support import facility, production_settings, services

SCAN = "20250106_090000_sample/20250106_090000_sample.h5"
STEM = "20250106_090000_sample"


@pytest.fixture
def settings():
    return production_settings()


def test_new_file_and_nersc_reconstruction(settings) -> None:
    """A new scan is copied spot832 -> data832 -> NERSC, catalogued, prunes scheduled, and reconstructed."""
    fac = facility(settings)
    fac.put("spot832", SCAN, b"raw scan bytes")
    report = dispatch(services(settings, fac), "bl832", [SCAN], parameters={"center": 1024.5})
    assert report.ok, [str(o) for o in report.outcomes]
    assert [(o.name, o.state) for o in report.outcomes] == [
        ("new_file", OutcomeState.OK),
        ("nersc_recon", OutcomeState.OK),
    ]
    raw = RelPath(SCAN)
    for endpoint in ("spot832", "data832_raw", "nersc832_alsdev_raw"):
        assert fac.read(endpoint, SCAN) == b"raw scan bytes"
        assert fac.ledger.verified_copy(endpoint, raw) is not None

    raw_record = next(r for r in fac.catalog.records.values() if r.kind == "raw")
    assert [(f.path, f.size) for f in raw_record.files] == [(raw, 14)]
    assert raw_record.files[0].checksum is not None
    assert raw_record.location == "/data/raw/" + SCAN

    prunes = {(p.endpoint, p.path.value, p.check_endpoint) for p in fac.ledger.pending_prunes()}
    assert ("spot832", SCAN, "data832_raw") in prunes
    assert ("data832_raw", SCAN, "nersc832_alsdev_raw") in prunes
    assert {t.kind for t in fac.scheduler.tasks.values()} == {"prune"}
    spot = next(t for t in fac.scheduler.tasks.values() if t.payload["endpoint"] == "spot832")
    assert (spot.run_at - fac.clock.now()).days in (0, 1)

    jobs = fac.hpc["nersc"].submitted
    assert [j.kind for j in jobs] == ["reconstruct", "multires"]
    assert jobs[0].parameters["input"] == "/global/cfs/cdirs/als/data_mover/8.3.2/raw/" + SCAN
    assert jobs[0].parameters["output_dir"].endswith(f"8.3.2/scratch/{STEM}/rec{STEM}")
    assert jobs[0].parameters["center"] == "1024.5"
    assert "center" not in jobs[1].parameters
    assert all(e.state is JobState.COMPLETED for e in fac.ledger.of_type(JobFinished))
    for endpoint in ("data832_scratch", "nersc832_alsdev_scratch"):
        assert fac.exists(endpoint, f"{STEM}/rec{STEM}/slice_0000.tiff")
        assert fac.exists(endpoint, f"{STEM}/rec{STEM}.zarr/0/0.0.0")

    derived = next(r for r in fac.catalog.records.values() if r.kind == "nersc_recon")
    assert derived.derived_from == (raw_record.dataset_key,)
    assert len(derived.files) == 5
    assert all(f.checksum is not None for f in derived.files)
    pscratch = {(p.endpoint, p.check_endpoint) for p in fac.ledger.pending_prunes()}
    assert ("nersc832_alsdev_pscratch_scratch", "nersc832_alsdev_scratch") in pscratch
    assert ("data832_scratch", "nersc832_alsdev_scratch") in pscratch


def test_rerun_redoes_nothing(settings) -> None:
    """Dispatching the same scan again moves nothing, submits no job and schedules nothing new."""
    fac = facility(settings)
    fac.put("spot832", SCAN, b"raw")
    svc = services(settings, fac)
    dispatch(svc, "bl832", [SCAN])
    tasks, jobs, events = fac.transfer.tasks_created, fac.hpc["nersc"].jobs_created, len(fac.ledger.events)
    assert dispatch(svc, "bl832", [SCAN]).ok
    assert (fac.transfer.tasks_created, fac.hpc["nersc"].jobs_created, len(fac.ledger.events)) == (
        tasks,
        jobs,
        events,
    )


def test_export_controlled_stays_on_site(settings) -> None:
    """Export-controlled data reaches data832 only: no NERSC copy, no reconstruction, data832 not pruned."""
    fac = facility(settings)
    fac.put("spot832", SCAN, b"secret")
    report = dispatch(services(settings, fac), "bl832", [SCAN], export_controlled=True)
    assert report.ok
    assert report.outcome("nersc_recon").state is OutcomeState.SKIPPED
    assert fac.exists("data832_raw", SCAN)
    assert not fac.exists("nersc832_alsdev_raw", SCAN)
    assert all(not r.destination.off_site for r in fac.transfer.requests)
    assert fac.hpc["nersc"].submitted == []
    assert {p.endpoint for p in fac.ledger.pending_prunes()} == {"spot832"}


def test_failed_transfer_stops_everything_after_it(settings) -> None:
    """A failed spot832 -> data832 task means no ingest, no prune and no reconstruction."""
    fac = facility(settings)
    fac.put("spot832", SCAN, b"raw")
    fac.transfer.fail_task_next("endpoint data832 is full", raise_on_wait=False)
    report = dispatch(services(settings, fac), "bl832", [SCAN])
    assert not report.ok
    failed = report.outcome("new_file")
    assert failed.state is OutcomeState.FAILED
    assert "copy/spot832->data832_raw" in failed.error
    assert "data832 is full" in failed.error
    assert report.outcome("nersc_recon").state is OutcomeState.NOT_RUN
    assert fac.catalog.records == {}
    assert fac.ledger.pending_prunes() == []
    assert fac.hpc["nersc"].submitted == []


def test_failed_job_stops_return_and_ingest(settings) -> None:
    """A reconstruction that fails is reported; nothing is copied back or catalogued as derived."""
    fac = facility(settings)
    fac.put("spot832", SCAN, b"raw")
    fac.hpc["nersc"].finish_next(JobState.OUT_OF_MEMORY, exit_code=137, reason="oom-kill")
    report = dispatch(services(settings, fac), "bl832", [SCAN])
    failed = report.outcome("nersc_recon")
    assert failed.state is OutcomeState.FAILED
    assert "nersc-job-0001" in failed.error
    assert "OUT_OF_MEMORY" in failed.error
    assert not fac.exists("data832_scratch", f"{STEM}/rec{STEM}/slice_0000.tiff")
    assert [r.kind for r in fac.catalog.records.values()] == ["raw"]


def test_alcf_reconstruction_stages_and_returns(settings) -> None:
    """With ALCF enabled the raw file is staged to ALCF, reconstructed there and returned to data832 scratch."""
    settings = production_settings(bl832={"decisions": {"new_file": True, "alcf_recon": True}})
    fac = facility(settings)
    fac.put("spot832", SCAN, b"raw")
    report = dispatch(services(settings, fac), "bl832", [SCAN])
    assert report.ok, [str(o) for o in report.outcomes]
    assert fac.exists("alcf832_raw", SCAN)
    assert fac.hpc["alcf"].submitted[0].parameters["input"] == "/data/raw/" + SCAN
    assert fac.exists("data832_scratch", f"{STEM}/rec{STEM}.zarr/.zattrs")
    checks = {(p.endpoint, p.check_endpoint) for p in fac.ledger.pending_prunes()}
    assert ("alcf832_raw", "data832_raw") in checks
    assert ("alcf832_scratch", "data832_scratch") in checks
    assert ("data832_scratch", "alcf832_scratch") in checks


def test_unknown_beamline_is_refused(settings) -> None:
    """A beamline id that is not configured is refused with the known ones listed."""
    fac = facility(settings)
    with pytest.raises(UnknownBeamline, match=r"bl999.*bl832"):
        dispatcher_for(services(settings, fac), "bl999")


def test_rewritten_file_is_moved_again(settings) -> None:
    """A scan rewritten under the same name after its first run is copied again, not taken as done."""
    fac = facility(settings)
    fac.put("spot832", SCAN, b"first take")
    svc = services(settings, fac)
    assert dispatch(svc, "bl832", [SCAN]).ok
    fac.clock.advance(60)
    fac.put("spot832", SCAN, b"second take, longer")
    assert dispatch(svc, "bl832", [SCAN]).ok
    assert fac.read("nersc832_alsdev_raw", SCAN) == b"second take, longer"
    assert fac.ledger.verified_copy("data832_raw", RelPath(SCAN)).size == len(b"second take, longer")


def test_catalog_outage_queues_the_record_and_does_not_fail(settings) -> None:
    """With the catalog down the data still moves and prunes are scheduled; the record waits in the outbox."""
    fac = facility(settings)
    fac.put("spot832", SCAN, b"raw")
    fac.catalog.go_down()
    report = dispatch(services(settings, fac), "bl832", [SCAN])
    assert report.outcome("new_file").state is OutcomeState.OK
    assert [r.kind for r in fac.ledger.pending_ingests()] == ["raw", "nersc_recon"]
    assert {p.endpoint for p in fac.ledger.pending_prunes()} >= {"spot832", "data832_raw"}
