"""Between :class:`CatalogRecord` and SciCat v3 datasets and origdatablocks (pure functions).

A record becomes:

- a dataset with pid ``<pid_prefix>/<dataset key>``, ``type`` ``raw`` (kind ``raw``) or
  ``derived`` (any other kind; ``inputDatasets`` = ``derived_from``), ``sourceFolder`` = the
  record's location, size and file count, and ``scientificMetadata`` = the record's metadata
  plus a ``splash_core`` object holding what SciCat has no field for (dataset key, beamline,
  kind, location, ``derived_from``, the metadata keys splash_core wrote, added locations);
- one origdatablock per checksum algorithm (one in practice) listing the files: ``path`` (the
  record's relative path), ``size``, ``time`` (the mtime, at SciCat's millisecond precision) and
  ``chk`` (omitted for files without a checksum), with ``chkAlg`` the algorithm's name.

SciCat requires a ``time`` for every file; a file without an mtime gets the dataset's
``creationTime`` and is listed in ``splash_core.mtime_unknown`` so it comes back without one.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from splash_core.domain.errors import CatalogError, InvalidPath
from splash_core.domain.models import CatalogRecord, Checksum, ChecksumAlgorithm, FileRecord
from splash_core.domain.paths import RelPath

META_KEY = "splash_core"
"""The ``scientificMetadata`` key that holds splash_core's own bookkeeping."""
_ALL = "*"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

JsonObject = dict[str, Any]


def to_ms(mtime: float) -> int:
    """``mtime`` (seconds since the epoch) in whole milliseconds, SciCat's precision."""
    return round(mtime * 1000)


def iso(ms: int) -> str:
    """``ms`` since the epoch as an RFC 3339 UTC time with milliseconds (``...T00:00:01.500Z``)."""
    return (_EPOCH + ms * _MS).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_ms(value: Any, what: str) -> int:
    """Milliseconds since the epoch of an RFC 3339 time from SciCat (naive times are taken as UTC).

    Raises:
        CatalogError: ``value`` is not such a time.
    """
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise CatalogError(f"{what}: SciCat sent {value!r}, which is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round((moment - _EPOCH) / _MS)


def creation_ms(record: CatalogRecord, now: datetime) -> int:
    """When the dataset became complete: its newest file's mtime, else ``now``."""
    mtimes = [f.mtime for f in record.files if f.mtime is not None]
    return to_ms(max(mtimes)) if mtimes else round((now - _EPOCH) / _MS)


def check_record(record: CatalogRecord) -> None:
    """Refuse what cannot be stored faithfully.

    Raises:
        CatalogError: the metadata uses the reserved key ``splash_core``.
    """
    if META_KEY in record.metadata:
        raise CatalogError(
            f"dataset {record.dataset_key} ({record.beamline}): metadata key {META_KEY!r} is reserved for "
            f"splash_core's own bookkeeping in SciCat; rename it"
        )


def _meta(dataset: Mapping[str, Any]) -> JsonObject:
    metadata = dataset.get("scientificMetadata")
    meta = metadata.get(META_KEY) if isinstance(metadata, Mapping) else None
    return dict(meta) if isinstance(meta, Mapping) else {}


def added_locations(dataset: Mapping[str, Any]) -> list[str]:
    """The locations attached to ``dataset`` after it was ingested, in order."""
    locations = _meta(dataset).get("locations")
    return [str(x) for x in locations] if isinstance(locations, list) else []


def original_location(dataset: Mapping[str, Any]) -> str:
    """The location the dataset was ingested with."""
    return str(_meta(dataset).get("location", dataset.get("sourceFolder") or ""))


def with_location(dataset: Mapping[str, Any], location: str) -> JsonObject | None:
    """The ``scientificMetadata`` of ``dataset`` with ``location`` added, or None when it is there already."""
    known = added_locations(dataset)
    if location in known or location == original_location(dataset):
        return None
    science = dataset.get("scientificMetadata")
    updated = dict(science) if isinstance(science, Mapping) else {}
    updated[META_KEY] = {**_meta(dataset), "locations": [*known, location]}
    return updated


def scientific_metadata(
    record: CatalogRecord,
    *,
    existing: Mapping[str, Any] | None = None,
    locations: Sequence[str] = (),
) -> JsonObject:
    """The ``scientificMetadata`` of ``record``.

    Keys someone else added to ``existing`` (e.g. curators, in SciCat) are kept; keys
    splash_core wrote before and the record no longer has are dropped.
    """
    kept: JsonObject = {}
    if existing is not None:
        old = existing.get("scientificMetadata")
        written = set(_meta(existing).get("metadata_keys") or ())
        if isinstance(old, Mapping):
            kept = {k: v for k, v in old.items() if k != META_KEY and k not in written}
    unknown = [f.path.value for f in record.files if f.mtime is None]
    meta: JsonObject = {
        "dataset_key": record.dataset_key,
        "beamline": record.beamline,
        "kind": record.kind,
        "location": record.location,
        "derived_from": list(record.derived_from),
        "metadata_keys": sorted(record.metadata),
        "locations": list(locations),
    }
    if unknown:
        meta["mtime_unknown"] = _ALL if len(unknown) == len(record.files) else unknown
    return {**kept, **dict(record.metadata), META_KEY: meta}


def dataset_type(record: CatalogRecord) -> str:
    """SciCat's dataset ``type`` for the record's kind."""
    return "raw" if record.kind == "raw" else "derived"


def _name(record: CatalogRecord) -> str:
    return posixpath.basename(record.location.rstrip("/")) or record.dataset_key


def mutable_fields(
    record: CatalogRecord,
    creation_location: str,
    *,
    existing: Mapping[str, Any] | None = None,
    locations: Sequence[str] = (),
) -> JsonObject:
    """The dataset fields that follow the record (sent again when it is ingested again).

    Ownership, contact and investigators are set when the dataset is created and left alone
    afterwards, so changes made in SciCat are not undone.
    """
    fields: JsonObject = {
        "datasetName": _name(record),
        "sourceFolder": record.location,
        "size": sum(f.size for f in record.files),
        "numberOfFiles": len(record.files),
        "scientificMetadata": scientific_metadata(record, existing=existing, locations=locations),
    }
    if dataset_type(record) == "raw":
        fields["creationLocation"] = creation_location
    else:
        fields["inputDatasets"] = list(record.derived_from)
    return fields


def new_dataset(
    record: CatalogRecord,
    *,
    pid: str,
    creation_ms: int,
    owner: str,
    owner_group: str,
    access_groups: Sequence[str],
    contact_email: str,
    investigator: str,
    creation_location: str,
    used_software: Sequence[str],
) -> JsonObject:
    """The body of ``POST /datasets`` for ``record``."""
    body: JsonObject = {
        "pid": pid,
        "type": dataset_type(record),
        "owner": owner,
        "ownerGroup": owner_group,
        "accessGroups": list(access_groups),
        "contactEmail": contact_email,
        "creationTime": iso(creation_ms),
        "keywords": [record.beamline],
        **mutable_fields(record, creation_location),
    }
    if body["type"] == "raw":
        body["principalInvestigator"] = investigator
    else:
        body["investigator"] = investigator
        body["usedSoftware"] = list(used_software)
    return body


def datablocks(record: CatalogRecord, *, stand_in_ms: int) -> list[JsonObject]:
    """The origdatablock contents for ``record`` (without ``datasetId``): one per checksum algorithm.

    Files without a checksum join the first block; a record without files has no block.
    """
    groups: dict[ChecksumAlgorithm | None, list[FileRecord]] = {}
    for f in record.files:
        groups.setdefault(f.checksum.algorithm if f.checksum is not None else None, []).append(f)
    unchecked = groups.pop(None, [])
    if unchecked:
        first = next(iter(groups), None)
        groups.setdefault(first, []).extend(unchecked)
    blocks: list[JsonObject] = []
    for algorithm, files in groups.items():
        entries = []
        for f in files:
            entry: JsonObject = {
                "path": f.path.value,
                "size": f.size,
                "time": iso(to_ms(f.mtime) if f.mtime is not None else stand_in_ms),
            }
            if f.checksum is not None:
                entry["chk"] = f.checksum.digest
            entries.append(entry)
        block: JsonObject = {"size": sum(f.size for f in files), "dataFileList": entries}
        if algorithm is not None:
            block["chkAlg"] = algorithm.value
        blocks.append(block)
    return blocks


def block_signature(block: Mapping[str, Any], what: str) -> tuple[object, ...]:
    """What makes two origdatablocks list the same files (algorithm, paths, sizes, checksums, times)."""
    files = block.get("dataFileList")
    entries = []
    for entry in files if isinstance(files, list) else ():
        if not isinstance(entry, Mapping):
            continue
        chk = entry.get("chk")
        entries.append(
            (
                str(entry.get("path")),
                entry.get("size"),
                str(chk).lower() if chk else None,
                parse_ms(entry.get("time"), what) if entry.get("time") is not None else None,
            )
        )
    algorithm = block.get("chkAlg") if any(e[2] is not None for e in entries) else None
    return (str(algorithm).lower() if algorithm else None, tuple(entries))


def _algorithm(value: Any) -> ChecksumAlgorithm | None:
    try:
        return ChecksumAlgorithm(str(value).lower())
    except ValueError:
        return None


def _files(pid: str, blocks: Iterable[Mapping[str, Any]], unknown: set[str] | str) -> tuple[FileRecord, ...]:
    files: list[FileRecord] = []
    for block in blocks:
        algorithm = _algorithm(block.get("chkAlg")) if block.get("chkAlg") else None
        entries = block.get("dataFileList")
        for entry in entries if isinstance(entries, list) else ():
            if not isinstance(entry, Mapping):
                continue
            raw_path = str(entry.get("path", ""))
            try:
                path = RelPath.parse(raw_path)
            except InvalidPath as exc:
                raise CatalogError(
                    f"SciCat dataset {pid}: file {raw_path!r} of an origdatablock is not a relative path ({exc})"
                ) from exc
            chk = entry.get("chk")
            checksum = Checksum(algorithm, str(chk)) if chk and algorithm is not None else None
            time = entry.get("time")
            known = unknown != _ALL and path.value not in unknown and time is not None
            mtime = parse_ms(time, f"SciCat dataset {pid}, file {raw_path}") / 1000 if known else None
            files.append(FileRecord(path, int(entry.get("size") or 0), checksum, mtime))
    return tuple(files)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def to_record(dataset: Mapping[str, Any], blocks: Sequence[Mapping[str, Any]]) -> CatalogRecord:
    """The :class:`CatalogRecord` a SciCat dataset and its origdatablocks stand for.

    Datasets splash_core created come back as ingested; others are mapped as well as SciCat's
    fields allow (key = pid, beamline = last part of ``creationLocation``, kind = ``type``).

    Raises:
        CatalogError: a file path is not relative, or a time is malformed.
    """
    pid = str(dataset.get("pid", ""))
    meta = _meta(dataset)
    science = dataset.get("scientificMetadata")
    science = science if isinstance(science, Mapping) else {}
    written = meta.get("metadata_keys")
    keys = [k for k in science if k != META_KEY] if not isinstance(written, list) else written
    metadata = {str(k): _text(science[k]) for k in keys if k in science}
    raw_unknown = meta.get("mtime_unknown")
    unknown: set[str] | str = _ALL if raw_unknown == _ALL else set(map(str, raw_unknown or ()))
    derived_from = meta.get("derived_from", dataset.get("inputDatasets") or ())
    location = str(dataset.get("creationLocation") or "")
    return CatalogRecord(
        dataset_key=str(meta.get("dataset_key", pid)),
        beamline=str(meta.get("beamline", location.rstrip("/").rsplit("/", 1)[-1])),
        files=_files(pid, blocks, unknown),
        location=original_location(dataset),
        metadata=metadata,
        derived_from=tuple(str(x) for x in derived_from),
        kind=str(meta.get("kind", dataset.get("type") or "raw")),
    )


__all__ = [
    "META_KEY",
    "added_locations",
    "block_signature",
    "check_record",
    "creation_ms",
    "datablocks",
    "dataset_type",
    "iso",
    "mutable_fields",
    "new_dataset",
    "original_location",
    "parse_ms",
    "scientific_metadata",
    "to_ms",
    "to_record",
    "with_location",
]
