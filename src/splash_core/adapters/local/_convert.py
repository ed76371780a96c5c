"""The local adapters' cattrs converter: models and events to JSON-ready data and back."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import cattrs

from splash_core.adapters.local._fs import trusted_relpath
from splash_core.domain.errors import InvalidInput
from splash_core.domain.events import (
    Ingested,
    JobFinished,
    LedgerEvent,
    LocationRemoved,
    LocationVerified,
    PruneDone,
    PruneRefused,
    PruneScheduled,
    TapeArchived,
)
from splash_core.domain.models import Checksum, ChecksumAlgorithm
from splash_core.domain.paths import RelPath

T = TypeVar("T")

EVENT_TYPES: Final[dict[str, type[LedgerEvent]]] = {
    cls.__name__: cls
    for cls in (
        LocationVerified,
        LocationRemoved,
        JobFinished,
        Ingested,
        PruneScheduled,
        PruneDone,
        PruneRefused,
        TapeArchived,
    )
}


def to_utc(value: datetime) -> datetime:
    """``value`` in UTC.

    Raises:
        InvalidInput: ``value`` is naive (has no timezone).
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"time {value.isoformat()} has no timezone; splash_core stores UTC times only")
    return value.astimezone(UTC)


def epoch_us(value: datetime) -> int:
    """Microseconds since the Unix epoch, for ordering and range queries in SQL."""
    delta = to_utc(value) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _checksum_from_str(value: Any, _: Any) -> Checksum:
    algorithm, _sep, digest = str(value).partition(":")
    return Checksum(ChecksumAlgorithm(algorithm), digest)


def make_converter() -> cattrs.Converter:
    """A converter of our own (never the global one) for RelPath, UTC datetimes and checksums.

    It reads back only what it wrote: paths are not validated again.
    """
    converter = cattrs.Converter()
    converter.register_unstructure_hook(RelPath, lambda p: p.value)
    # paths read back were validated when written; re-validating costs ~9 µs each, which
    # dominates loading thousands of events
    converter.register_structure_hook(RelPath, lambda v, _: trusted_relpath(v))
    converter.register_unstructure_hook(datetime, lambda d: to_utc(d).isoformat())
    converter.register_structure_hook(datetime, lambda v, _: datetime.fromisoformat(v))
    converter.register_unstructure_hook(Checksum, str)
    converter.register_structure_hook(Checksum, _checksum_from_str)
    return converter


CONVERTER: Final = make_converter()


def dumps(value: object) -> str:
    """``value`` (an attrs model) as compact JSON."""
    # ASCII-only JSON keeps undecodable file names (lone surrogates) storable as SQLite text
    return json.dumps(CONVERTER.unstructure(value), separators=(",", ":"))


def loads(data: str, cls: type[T]) -> T:
    """A model of type ``cls`` from JSON made by :func:`dumps`."""
    return CONVERTER.structure(json.loads(data), cls)


def event_loads(type_name: str, data: str) -> LedgerEvent:
    """A ledger event from its type name and JSON payload."""
    return loads(data, EVENT_TYPES[type_name])
