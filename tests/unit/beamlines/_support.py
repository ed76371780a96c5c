"""Building beamline services on the fakes, from the shipped production configuration."""

from __future__ import annotations

from pathlib import Path

import attrs

from splash_core.beamlines import BeamlineServices
from splash_core.domain.models import JobSpec
from splash_core.domain.settings import Settings
from splash_core.entrypoints.config import settings_from_dict
from splash_core.entrypoints.profiles import production_dict
from tests.fakes import FakeFacility


def production_settings(**beamline_changes: dict[str, object]) -> Settings:
    """The production example as settings; ``bl832={"decisions": {...}}`` replaces keys of a beamline."""
    data = production_dict()
    for beamline_id, changes in beamline_changes.items():
        data["beamlines"][beamline_id].update(changes)
    return settings_from_dict(data, base_dir=Path("/"), check_secrets=False)


def facility(settings: Settings) -> FakeFacility:
    """Fakes that know every configured endpoint, with jobs that write realistic outputs."""
    fac = FakeFacility(endpoints=dict(settings.endpoints))
    for hpc in fac.hpc.values():
        hpc.register("reconstruct", _writer(fac, ("slice_0000.tiff", "slice_0001.tiff")))
        hpc.register("multires", _writer(fac, (".zattrs", "0/0.0.0", "1/0.0.0")))
        hpc.register("ptycho", _writer(fac, ("object.npy", "probe.npy")))
    return fac


def _writer(fac: FakeFacility, names: tuple[str, ...]):
    def write(spec: JobSpec) -> int:
        for output in spec.expected_outputs:
            for name in names:
                fac.storage.put(fac.endpoints[output.endpoint], output.path.join(name), f"{spec.name}:{name}".encode())
        return 0

    return write


def services(settings: Settings, fac: FakeFacility, **ports: object) -> BeamlineServices:
    """Beamline services over the fakes (any port replaceable by keyword), polling jobs every 10 s."""
    built = BeamlineServices(
        settings=settings,
        transfer=fac.transfer,
        storage=fac.storage,
        hpc=fac.hpc,
        tape=fac.tape,
        catalog=fac.catalog,
        scheduler=fac.scheduler,
        ledger=fac.ledger,
        clock=fac.clock,
        job_poll_interval_s=10.0,
        job_not_found_grace_s=120.0,
    )
    return attrs.evolve(built, **ports)
