"""A pipeline interrupted at any call and run again ends where an uninterrupted run ends."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splash_core.beamlines import dispatch
from splash_core.domain.events import LocationVerified
from tests.fakes import FakeFacility
from tests.unit.beamlines._support import facility, production_settings, services

SCANS = ["20250106_090000_a.h5", "day2/20250107_090000_b.h5"]
SETTINGS = production_settings()


class Crash(BaseException):
    """The process dying: nothing catches it, nothing after it runs."""


class Calls:
    """Counts calls into the ports and crashes at one of them, before or after it takes effect."""

    def __init__(self, crash_at: int | None = None, after: bool = False) -> None:
        self.count = 0
        self.crash_at = crash_at
        self.after = after

    def wrap(self, target: Any) -> Any:
        return _Proxy(target, self)


class _Proxy:
    def __init__(self, target: Any, calls: Calls) -> None:
        self._target = target
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr
        calls = self._calls

        def call(*args: Any, **kwargs: Any) -> Any:
            calls.count += 1
            crash = calls.count == calls.crash_at
            if crash and not calls.after:
                raise Crash(name)
            result = attr(*args, **kwargs)
            if crash:
                raise Crash(name)
            return result

        return call


def run(fac: FakeFacility, calls: Calls) -> None:
    svc = services(
        SETTINGS,
        fac,
        transfer=calls.wrap(fac.transfer),
        storage=calls.wrap(fac.storage),
        hpc={name: calls.wrap(h) for name, h in fac.hpc.items()},
        catalog=calls.wrap(fac.catalog),
        scheduler=calls.wrap(fac.scheduler),
        ledger=calls.wrap(fac.ledger),
    )
    for scan in SCANS:
        dispatch(svc, "bl832", [scan], parameters={"center": 10})


def fresh() -> FakeFacility:
    fac = facility(SETTINGS)
    for scan in SCANS:
        fac.put("spot832", scan, scan.encode() * 3, mtime=0.0)
    return fac


def state(fac: FakeFacility) -> dict[str, Any]:
    endpoints = SETTINGS.endpoints.values()
    return {
        "files": {e.name: fac.storage.files(e) for e in endpoints},
        "verified": {
            (e.name, p, fac.ledger.verified_copy(e.name, p).size, fac.ledger.verified_copy(e.name, p).checksum)
            for e in endpoints
            for p in fac.ledger.verified_paths(e.name)
        },
        "catalog": {(r.dataset_key, r.kind, r.files, r.location, r.derived_from) for r in fac.catalog.records.values()},
        "outbox": list(fac.ledger.pending_ingests()),
        "prunes": {(p.endpoint, p.path, p.check_endpoint) for p in fac.ledger.pending_prunes()},
        "scheduled": {(t.key, t.kind) for t in fac.scheduler.pending()},
    }


def _reference() -> tuple[dict[str, Any], int, int]:
    fac = fresh()
    calls = Calls()
    run(fac, calls)
    return state(fac), calls.count, len(fac.ledger.of_type(LocationVerified))


REFERENCE, TOTAL_CALLS, VERIFICATIONS = _reference()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(crash_at=st.integers(1, TOTAL_CALLS), after=st.booleans())
def test_interrupted_then_rerun_matches_uninterrupted(crash_at: int, after: bool) -> None:
    """Crash at any port call (before or after it takes effect), run again: same files, copies, catalog, prunes."""
    fac = fresh()
    with contextlib.suppress(Crash):
        run(fac, Calls(crash_at, after))
    run(fac, Calls())
    assert state(fac) == REFERENCE
    assert len(fac.ledger.of_type(LocationVerified)) >= VERIFICATIONS


def test_the_reference_run_did_everything() -> None:
    """The uninterrupted run the property compares against moved, reconstructed, catalogued and scheduled."""
    assert REFERENCE["outbox"] == []
    assert len(REFERENCE["catalog"]) == 4
    assert {e for e, *_ in REFERENCE["prunes"]} == {
        "spot832",
        "data832_raw",
        "nersc832_alsdev_pscratch_scratch",
        "data832_scratch",
    }
    assert TOTAL_CALLS > 50
