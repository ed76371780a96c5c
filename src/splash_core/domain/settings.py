"""Typed settings: what the configuration file says, after validation.

The YAML loader (``entrypoints.config``) builds these; domain services and
beamline compositions read them. Nothing here does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

from splash_core.domain.errors import UnknownBeamline, UnknownEndpoint
from splash_core.domain.models import ChecksumAlgorithm, Endpoint, RetentionPolicy, Site
from splash_core.domain.paths import RelPath


class SecretSource(enum.Enum):
    """Where a secret comes from."""

    ENV = "env"
    FILE = "file"


@attrs.frozen
class SecretRef:
    """A pointer to a secret (never the secret itself)."""

    source: SecretSource
    name: str

    def __str__(self) -> str:
        return f"{self.source.value}:{self.name}"


@attrs.frozen
class FacilitySettings:
    """A facility: where it is."""

    name: str
    site: Site
    description: str = ""


@attrs.frozen
class AdapterSettings:
    """Which adapter implements each port (``local`` is the embedded facility)."""

    transfer: str = "local"
    storage: str = "local"
    hpc: Mapping[str, str] = attrs.field(factory=dict)
    tape: str = "local"
    catalog: str = "local"
    scheduler: str = "local"
    ledger: str = "sqlite"


@attrs.frozen
class TransferSettings:
    """Batching, deadlines and retries for moves."""

    max_files_per_batch: int = 1000
    max_bytes_per_batch: int = 2 * 1024**4
    timeout_seconds: float = 6 * 3600.0
    checksum_algorithm: ChecksumAlgorithm = ChecksumAlgorithm.BLAKE3
    retry_attempts: int = 5
    retry_max_wait_seconds: float = 300.0


@attrs.frozen
class CopySettings:
    """One hop of a beamline's new-file route."""

    source: str
    destination: str
    enabled: bool = True


@attrs.frozen
class JobStepSettings:
    """One job of a processing pipeline (``kind`` picks the facility's job template)."""

    kind: str
    time_limit_minutes: float = 60.0
    parameters: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class ProcessingSettings:
    """A processing pipeline: stage input, run jobs on a facility, copy results back, prune."""

    hpc: str
    input_endpoint: str
    output_endpoint: str
    jobs: tuple[JobStepSettings, ...]
    stage_from: str | None = None
    return_to: tuple[str, ...] = ()
    retention: Mapping[str, float] = attrs.field(factory=dict)


@attrs.frozen
class ArchiveSettings:
    """Tape archive of a beamline's data from ``source`` after ``after_days``."""

    source: str
    after_days: float = 30.0
    proposal_depth: int = 0


@attrs.frozen
class BeamlineSettings:
    """Everything one beamline needs; adding a beamline is a block of this."""

    id: str
    title: str
    source: str
    copies: tuple[CopySettings, ...]
    retention: Mapping[str, float] = attrs.field(factory=dict)
    decisions: Mapping[str, bool] = attrs.field(factory=dict)
    processing: Mapping[str, ProcessingSettings] = attrs.field(factory=dict)
    archive: ArchiveSettings | None = None
    include: tuple[str, ...] = ()
    settle_seconds: float = 30.0
    batch_files: int = 500
    batch_seconds: float = 10.0

    def retention_policies(self) -> tuple[RetentionPolicy, ...]:
        """Retention of the new-file route: each endpoint is checked against the last enabled hop leaving it.

        Where an endpoint has several onward hops the farthest copy counts (7.3.3 prunes data733
        once the NERSC copy is verified, not the BeeGFS staging copy).
        """
        policies = []
        for endpoint, days in self.retention.items():
            onward = [c for c in self.copies if c.source == endpoint]
            enabled = [c for c in onward if c.enabled] or onward
            if enabled:
                policies.append(RetentionPolicy(endpoint=endpoint, days=days, check_endpoint=enabled[-1].destination))
        return tuple(policies)


@attrs.frozen
class Settings:
    """The whole validated configuration."""

    facilities: Mapping[str, FacilitySettings]
    endpoints: Mapping[str, Endpoint]
    beamlines: Mapping[str, BeamlineSettings]
    adapters: AdapterSettings = attrs.field(factory=AdapterSettings)
    transfer: TransferSettings = attrs.field(factory=TransferSettings)
    workspace: str | None = None
    secrets: Mapping[str, SecretRef] = attrs.field(factory=dict)
    adapter_options: Mapping[str, Mapping[str, object]] = attrs.field(factory=dict)
    flight_checks: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    source_file: str | None = None

    def endpoint(self, name: str) -> Endpoint:
        """The endpoint called ``name``.

        Raises:
            UnknownEndpoint: no such endpoint in the configuration.
        """
        try:
            return self.endpoints[name]
        except KeyError:
            known = ", ".join(sorted(self.endpoints))
            raise UnknownEndpoint(f"endpoint {name!r} is not in the configuration (known: {known})") from None

    def beamline(self, beamline_id: str) -> BeamlineSettings:
        """The beamline ``beamline_id``.

        Raises:
            UnknownBeamline: no such beamline in the configuration.
        """
        try:
            return self.beamlines[beamline_id]
        except KeyError:
            known = ", ".join(sorted(self.beamlines))
            raise UnknownBeamline(f"beamline {beamline_id!r} is not in the configuration (known: {known})") from None


def rel(value: str) -> RelPath:
    """Shorthand for :meth:`RelPath.parse`."""
    return RelPath.parse(value)
