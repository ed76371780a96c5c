"""Dispatcher: new_file first, processing concurrently after it, parameters filtered, export control."""

from __future__ import annotations

import threading

import pytest

from splash_core.domain.errors import ConfigError, InvalidInput, TransferFailed, UnknownBeamline
from splash_core.domain.paths import RelPath
from splash_core.domain.services.dispatch import (
    Dispatcher,
    DispatchRequest,
    OutcomeState,
    PipelineEntry,
    PipelineInput,
)
from splash_core.domain.settings import BeamlineSettings, CopySettings

PATHS = (RelPath("scans/a.h5"),)


def beamline(**decisions: bool) -> BeamlineSettings:
    return BeamlineSettings(
        id="bl832",
        title="t",
        source="spot832",
        copies=(CopySettings("spot832", "data832_raw"),),
        decisions=decisions,
    )


class Recorder:
    """Pipelines that record what they were given and when."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, PipelineInput]] = []
        self.lock = threading.Lock()

    def entry(self, name: str, accepts: tuple[str, ...] = (), *, off_site: bool = False, fail: bool = False):
        def run(given: PipelineInput) -> dict[str, str]:
            with self.lock:
                self.calls.append((name, given))
            if fail:
                raise TransferFailed(f"task of {name} FAILED at data832_raw")
            return {"ran": name}

        return PipelineEntry(run=run, accepts=frozenset(accepts), off_site=off_site)


def test_new_file_runs_before_processing_and_each_gets_its_parameters() -> None:
    """new_file runs first; each processing pipeline gets only the parameters it declares."""
    rec = Recorder()
    dispatcher = Dispatcher(
        {
            "new_file": rec.entry("new_file", ("priority",)),
            "nersc_recon": rec.entry("nersc_recon", ("center", "priority"), off_site=True),
            "alcf_recon": rec.entry("alcf_recon", ("center",), off_site=True),
        }
    )
    request = DispatchRequest(
        beamline(new_file=True, nersc_recon=True, alcf_recon=True),
        PATHS,
        parameters={"center": 1024.5, "priority": "high"},
    )
    report = dispatcher.dispatch(request)
    assert report.ok
    assert [o.name for o in report.outcomes] == ["new_file", "nersc_recon", "alcf_recon"]
    assert rec.calls[0][0] == "new_file"
    given = {name: dict(inp.parameters) for name, inp in rec.calls}
    assert given == {
        "new_file": {"priority": "high"},
        "nersc_recon": {"center": 1024.5, "priority": "high"},
        "alcf_recon": {"center": 1024.5},
    }


def test_failed_new_file_stops_processing() -> None:
    """When new_file fails nothing else runs, and the report says what failed and where."""
    rec = Recorder()
    dispatcher = Dispatcher({"new_file": rec.entry("new_file", fail=True), "nersc_recon": rec.entry("nersc_recon")})
    report = dispatcher.dispatch(DispatchRequest(beamline(nersc_recon=True), PATHS))
    assert not report.ok
    assert [name for name, _ in rec.calls] == ["new_file"]
    first = report.outcome("new_file")
    assert first.state is OutcomeState.FAILED
    assert "scans/a.h5" in first.error
    assert "data832_raw" in first.error
    assert report.outcome("nersc_recon").state is OutcomeState.NOT_RUN


def test_one_failed_processing_pipeline_does_not_hide_the_others() -> None:
    """Processing pipelines are independent: one failing leaves the others' outcomes intact."""
    rec = Recorder()
    dispatcher = Dispatcher(
        {
            "new_file": rec.entry("new_file"),
            "a": rec.entry("a", fail=True),
            "b": rec.entry("b"),
        }
    )
    report = dispatcher.dispatch(DispatchRequest(beamline(a=True, b=True), PATHS))
    assert [o.state for o in report.outcomes] == [OutcomeState.OK, OutcomeState.FAILED, OutcomeState.OK]


def test_export_controlled_data_skips_off_site_pipelines() -> None:
    """Export-controlled data never reaches an off-site pipeline; on-site ones still run."""
    rec = Recorder()
    dispatcher = Dispatcher(
        {
            "new_file": rec.entry("new_file"),
            "nersc_recon": rec.entry("nersc_recon", off_site=True),
            "local_recon": rec.entry("local_recon"),
        }
    )
    report = dispatcher.dispatch(
        DispatchRequest(beamline(nersc_recon=True, local_recon=True), PATHS, export_controlled=True)
    )
    assert report.ok
    skipped = report.outcome("nersc_recon")
    assert skipped.state is OutcomeState.SKIPPED
    assert skipped.reason.startswith("skipped: export-controlled")
    assert [name for name, _ in rec.calls] == ["new_file", "local_recon"]
    assert rec.calls[0][1].export_controlled


def test_disabled_pipelines_do_not_run() -> None:
    """Only pipelines switched on in the decisions run; new_file can be switched off."""
    rec = Recorder()
    dispatcher = Dispatcher({"new_file": rec.entry("new_file"), "nersc_recon": rec.entry("nersc_recon")})
    report = dispatcher.dispatch(DispatchRequest(beamline(new_file=False, nersc_recon=True), PATHS))
    assert [o.name for o in report.outcomes] == ["nersc_recon"]


@pytest.mark.parametrize(
    ("request_kwargs", "error"),
    [
        ({"paths": ()}, "no paths"),
        ({"paths": ("scans/a.h5",)}, "not a RelPath"),
        ({"parameters": {"centre": 1}}, "unknown parameter"),
        ({"export_controlled": "no"}, "true or false"),
    ],
)
def test_bad_input_runs_nothing(request_kwargs: dict[str, object], error: str) -> None:
    """Empty paths, raw strings, unknown parameters or a non-boolean flag are refused before any pipeline."""
    rec = Recorder()
    dispatcher = Dispatcher({"new_file": rec.entry("new_file", ("center",))})
    kwargs = {"beamline": beamline(), "paths": PATHS, **request_kwargs}
    with pytest.raises(InvalidInput, match=error):
        dispatcher.dispatch(DispatchRequest(**kwargs))
    assert rec.calls == []


def test_unknown_beamline_and_unknown_decision_are_refused() -> None:
    """A request for another beamline, or a decision naming no pipeline, is refused."""
    rec = Recorder()
    dispatcher = Dispatcher({"new_file": rec.entry("new_file")}, beamline_id="bl733")
    with pytest.raises(UnknownBeamline, match="bl832"):
        dispatcher.dispatch(DispatchRequest(beamline(), PATHS))
    with pytest.raises(ConfigError, match=r"beamlines\.bl832\.decisions\.olcf_recon"):
        Dispatcher({"new_file": rec.entry("new_file")}).dispatch(DispatchRequest(beamline(olcf_recon=True), PATHS))
    assert rec.calls == []
