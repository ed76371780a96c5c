"""Tape archive: plan files into HPSS bundles, write and verify them, record where they went.

Planning rules (from the HPSS practice at NERSC):

- files are grouped by proposal and beam cycle (cycle 1 = Jan 1 - Jul 15, cycle 2 =
  Jul 16 - Dec 31, by the file's date, its mtime in UTC unless told otherwise);
- each group goes into ``htar`` bundles of at most ``max_bundle_bytes`` (2 TB), named
  ``<proposal>_<year>-<cycle>.tar``, or ``<proposal>_<year>-<cycle>_part<N>.tar`` (N from 1)
  when the group needs more than one bundle;
- a member larger than ``max_member_bytes`` (65 GB, the ``htar`` member limit) goes alone by
  ``hsi cput``; such a bundle is named after the member: its relative path, unchanged (so the
  tape copy mirrors the folder tree, and the name is unique within a plan);
- the plan is deterministic: paths are sorted and placed first-fit in that order.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import attrs

from splash_core.domain.errors import CatalogError, InvalidInput, SplashError, TapeError
from splash_core.domain.events import Ingested, StepRecord, StepState, TapeArchived
from splash_core.domain.models import ArchiveMethod, Endpoint, FileRecord, TapeBundle, TapeReceipt
from splash_core.domain.paths import RelPath

if TYPE_CHECKING:
    from splash_core.ports.catalog import CatalogPort
    from splash_core.ports.clock import ClockPort
    from splash_core.ports.ledger import LedgerPort
    from splash_core.ports.tape import TapeArchivePort

logger = logging.getLogger(__name__)

MAX_BUNDLE_BYTES = 2 * 10**12
"""Largest ``htar`` bundle (2 TB)."""
MAX_MEMBER_BYTES = 65 * 10**9
"""Largest member ``htar`` takes (65 GB); bigger files go alone by ``hsi cput``."""

HTAR_NAME = re.compile(r"^(?P<proposal>[^/]+)_(?P<year>\d{4})-(?P<cycle>[12])(?:_part(?P<part>[1-9]\d*))?\.tar$")
"""The name of every ``htar`` bundle the planner makes."""

_CYCLE_2_START = (7, 16)


def beam_cycle(d: date) -> tuple[int, int]:
    """The ALS beam cycle of a day: ``(year, 1)`` for Jan 1 - Jul 15, ``(year, 2)`` for Jul 16 - Dec 31."""
    return d.year, 1 if (d.month, d.day) < _CYCLE_2_START else 2


def mtime_date(record: FileRecord) -> date:
    """The UTC day of a file's mtime.

    Raises:
        InvalidInput: the record has no mtime.
    """
    if record.mtime is None:
        raise InvalidInput(f"{record.path} has no mtime, so its beam cycle is unknown; pass date_of=")
    return datetime.fromtimestamp(record.mtime, tz=UTC).date()


def first_component(path: RelPath) -> str:
    """The default proposal of a file: the first component of its path."""
    return path.parts[0]


def plan_bundles(
    files: Sequence[FileRecord],
    *,
    proposal_of: Callable[[RelPath], str] = first_component,
    date_of: Callable[[FileRecord], date] = mtime_date,
    max_bundle_bytes: int = MAX_BUNDLE_BYTES,
    max_member_bytes: int = MAX_MEMBER_BYTES,
) -> list[TapeBundle]:
    """Plan ``files`` into tape bundles (see the module docstring for the rules).

    Args:
        files: the files to archive, each path once.
        proposal_of: the proposal a path belongs to (the first path component by default).
        date_of: the day that decides a file's beam cycle (its mtime in UTC by default).
        max_bundle_bytes: the largest ``htar`` bundle.
        max_member_bytes: files larger than this go alone by ``hsi cput``.

    Returns:
        The bundles ordered by proposal, year and cycle; within a group the ``htar`` parts first,
        then the ``hsi cput`` singles by path.

    Raises:
        InvalidInput: a path appears twice, a size is negative, a limit is not positive, or a
            proposal is empty or contains ``/``.
    """
    if max_bundle_bytes <= 0 or max_member_bytes <= 0:
        raise InvalidInput(
            f"bundle limits must be positive (max_bundle_bytes={max_bundle_bytes}, max_member_bytes={max_member_bytes})"
        )
    groups: dict[tuple[str, int, int], list[FileRecord]] = {}
    seen: set[RelPath] = set()
    for record in sorted(files, key=lambda r: r.path):
        if record.path in seen:
            raise InvalidInput(f"{record.path} is listed twice; each file goes to tape once")
        if record.size < 0:
            raise InvalidInput(f"{record.path} has a negative size ({record.size})")
        seen.add(record.path)
        proposal = proposal_of(record.path)
        if not proposal or "/" in proposal:
            raise InvalidInput(f"proposal {proposal!r} of {record.path} must be non-empty and contain no '/'")
        year, cycle = beam_cycle(date_of(record))
        groups.setdefault((proposal, year, cycle), []).append(record)

    bundles: list[TapeBundle] = []
    for (proposal, year, cycle), members in sorted(groups.items()):
        bins: list[list[FileRecord]] = []
        sizes: list[int] = []
        singles: list[FileRecord] = []
        for record in members:
            if record.size > max_member_bytes or record.size > max_bundle_bytes:
                singles.append(record)
                continue
            for i, used in enumerate(sizes):
                if used + record.size <= max_bundle_bytes:
                    bins[i].append(record)
                    sizes[i] += record.size
                    break
            else:
                bins.append([record])
                sizes.append(record.size)
        base = f"{proposal}_{year}-{cycle}"
        for n, contents in enumerate(bins, start=1):
            name = f"{base}.tar" if len(bins) == 1 else f"{base}_part{n}.tar"
            bundles.append(TapeBundle(name, ArchiveMethod.HTAR, tuple(contents), proposal, year, cycle))
        for record in singles:
            bundles.append(TapeBundle(record.path.value, ArchiveMethod.HSI_CPUT, (record,), proposal, year, cycle))
    return bundles


@attrs.frozen
class ArchiveReport:
    """What an archive (or restore) run did.

    ``receipts``: bundles written and verified in this run. ``already``: bundles found done in the
    ledger (not rewritten). ``refused``: path -> why it was not archived. ``failed``: bundle name
    -> error. ``catalog_errors``: tape locations the catalog did not take (the archive stands).
    """

    receipts: tuple[TapeReceipt, ...] = ()
    already: tuple[str, ...] = ()
    refused: tuple[tuple[RelPath, str], ...] = ()
    failed: tuple[tuple[str, str], ...] = ()
    catalog_errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing was refused and no bundle failed (catalog errors aside)."""
        return not self.refused and not self.failed

    @property
    def archived_paths(self) -> tuple[RelPath, ...]:
        """Every member written and verified in this run."""
        return tuple(m.path for r in self.receipts for m in r.members)


def _digest(bundle: TapeBundle) -> str:
    h = hashlib.sha256()
    for m in bundle.members:
        h.update(f"{m.path.value}\0{m.size}\0".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:16]


class ArchiveService:
    """Write verified files to tape in planned bundles and record where each member went.

    Only files with a verified copy on the source endpoint in the ledger go to tape. Each bundle
    is one ledger step (``archive/<source>/<bundle>``), so a re-run skips bundles already written
    and verified. A file already on tape from the same source (a ``TapeArchived`` event with the
    same size) is not planned again; when a later run plans a bundle whose name was already used
    for other members, it takes the next free ``_partN`` name, so nothing on tape is overwritten.
    """

    def __init__(
        self,
        tape: TapeArchivePort,
        ledger: LedgerPort,
        catalog: CatalogPort,
        clock: ClockPort,
    ) -> None:
        self._tape = tape
        self._ledger = ledger
        self._catalog = catalog
        self._clock = clock

    def archive(
        self,
        source: Endpoint,
        files: Sequence[FileRecord | RelPath],
        *,
        proposal_of: Callable[[RelPath], str] = first_component,
        date_of: Callable[[FileRecord], date] = mtime_date,
        max_bundle_bytes: int = MAX_BUNDLE_BYTES,
        max_member_bytes: int = MAX_MEMBER_BYTES,
    ) -> ArchiveReport:
        """Archive ``files`` (relative to ``source``) to tape, bundle by bundle.

        Args:
            source: where the files are read from (e.g. NERSC CFS).
            files: records or bare paths; a bare path takes its size from the ledger's verified
                copy and, for the beam cycle, the day that copy was verified.
            proposal_of: see :func:`plan_bundles`.
            date_of: see :func:`plan_bundles` (defaults to the mtime, or the verification day).
            max_bundle_bytes: see :func:`plan_bundles`.
            max_member_bytes: see :func:`plan_bundles`.

        Returns:
            What was written, skipped, refused and failed; a failed bundle does not stop the others.

        Raises:
            InvalidInput: see :func:`plan_bundles`.
        """
        records, refused, already_paths = self._eligible(source, files)
        bundles = plan_bundles(
            records,
            proposal_of=proposal_of,
            date_of=date_of,
            max_bundle_bytes=max_bundle_bytes,
            max_member_bytes=max_member_bytes,
        )
        receipts: list[TapeReceipt] = []
        already: list[str] = []
        failed: list[tuple[str, str]] = []
        catalog_errors: list[str] = []
        used: set[str] = set()
        for planned in bundles:
            bundle, done = self._claim_name(source, planned, used)
            used.add(bundle.name)
            if done:
                already.append(bundle.name)
                continue
            try:
                receipt = self._write(source, bundle)
            except SplashError as exc:
                logger.error("tape bundle %s from %s failed: %s", bundle.name, source.name, exc)
                failed.append((bundle.name, str(exc)))
                continue
            receipts.append(receipt)
            catalog_errors.extend(self._catalog_locations(receipt))
        if already_paths:
            logger.info("%d file(s) from %s are already on tape", len(already_paths), source.name)
        return ArchiveReport(
            receipts=tuple(receipts),
            already=tuple(already),
            refused=tuple(refused),
            failed=tuple(failed),
            catalog_errors=tuple(catalog_errors),
        )

    def restore(self, source: Endpoint, paths: Sequence[RelPath], destination: Endpoint) -> ArchiveReport:
        """Bring ``paths`` (archived from ``source``) back from tape to ``destination``.

        Paths are grouped by the bundle the ledger says holds them, one restore per bundle.
        Copies on ``destination`` are not verified here (the tape adapter restores and checks
        names and sizes); verify them with a move or reconcile before relying on them.

        Returns:
            ``receipts`` per bundle restored from, ``refused`` for paths not on tape, ``failed``
            per bundle whose restore raised.
        """
        by_bundle: dict[tuple[str, str], list[TapeArchived]] = {}
        refused: list[tuple[RelPath, str]] = []
        for path in sorted(set(paths)):
            event = self._on_tape(source, path)
            if event is None:
                refused.append((path, f"no tape copy of {path} from {source.name} in the ledger"))
                continue
            by_bundle.setdefault((event.bundle, event.tape_path), []).append(event)
        receipts: list[TapeReceipt] = []
        failed: list[tuple[str, str]] = []
        for (bundle, tape_path), events in sorted(by_bundle.items()):
            members = tuple(FileRecord(e.path, e.size) for e in events)
            receipt = TapeReceipt(bundle=bundle, tape_path=tape_path, members=members, verified=True)
            try:
                self._tape.restore(receipt, tuple(m.path for m in members), destination)
            except SplashError as exc:
                logger.error("restore of %s to %s failed: %s", bundle, destination.name, exc)
                failed.append((bundle, str(exc)))
                continue
            receipts.append(receipt)
        return ArchiveReport(receipts=tuple(receipts), refused=tuple(refused), failed=tuple(failed))

    # --- internals ---------------------------------------------------------

    def _eligible(
        self, source: Endpoint, files: Sequence[FileRecord | RelPath]
    ) -> tuple[list[FileRecord], list[tuple[RelPath, str]], list[RelPath]]:
        records: list[FileRecord] = []
        refused: list[tuple[RelPath, str]] = []
        already: list[RelPath] = []
        for item in files:
            path = item if isinstance(item, RelPath) else item.path
            verified = self._ledger.verified_copy(source.name, path)
            if verified is None:
                refused.append(
                    (path, f"{path} has no verified copy on {source.name} in the ledger; move it there first")
                )
                continue
            if isinstance(item, FileRecord) and item.size != verified.size:
                refused.append(
                    (
                        path,
                        f"{path} on {source.name} is {item.size} bytes but its verified copy was "
                        f"{verified.size}; verify it again before archiving",
                    )
                )
                continue
            on_tape = self._on_tape(source, path)
            if on_tape is not None and on_tape.size == verified.size:
                already.append(path)
                continue
            # a copy verified by a service that reports no digest (Globus) goes with its size only
            if isinstance(item, FileRecord):
                record = attrs.evolve(item, checksum=item.checksum or verified.checksum)
            else:
                record = FileRecord(path, verified.size, verified.checksum, mtime=verified.at.timestamp())
            records.append(record)
        return records, refused, already

    def _on_tape(self, source: Endpoint, path: RelPath) -> TapeArchived | None:
        found = None
        for event in self._ledger.history(path):
            if isinstance(event, TapeArchived) and event.source_endpoint == source.name:
                found = event
        return found

    def _step_key(self, source: Endpoint, name: str) -> str:
        return f"archive/{source.name}/{name}"

    def _claim_name(self, source: Endpoint, bundle: TapeBundle, used: set[str]) -> tuple[TapeBundle, bool]:
        """The bundle under a name free for its members, and whether it is already on tape."""
        digest = _digest(bundle)
        if bundle.method is ArchiveMethod.HSI_CPUT:
            # a single file under its own path: a changed file replaces its older tape copy
            step = self._ledger.step(self._step_key(source, bundle.name))
            return bundle, _done_with(step, digest)
        base = f"{bundle.proposal}_{bundle.year}-{bundle.cycle}"
        for name in itertools.chain([bundle.name], (f"{base}_part{n}.tar" for n in itertools.count(1))):
            if name in used:
                continue
            step = self._ledger.step(self._step_key(source, name))
            # a name is free unless it may hold other members on tape (a failed write recorded none)
            if step is None or step.state is StepState.FAILED or _detail(step).get("members") == digest:
                return attrs.evolve(bundle, name=name), _done_with(step, digest)
        raise AssertionError("unreachable: part names never run out")  # pragma: no cover

    def _write(self, source: Endpoint, bundle: TapeBundle) -> TapeReceipt:
        key = self._step_key(source, bundle.name)
        digest = _digest(bundle)
        self._ledger.record_step(StepRecord(key, StepState.STARTED, self._clock.now(), json.dumps({"members": digest})))
        try:
            receipt = self._tape.verify(self._tape.archive(bundle, source))
            if not receipt.verified:
                raise TapeError(
                    f"tape bundle {bundle.name} ({receipt.tape_path}) did not verify; it stays unarchived, "
                    "run the archive again"
                )
            written = {m.path for m in receipt.members}
            missing = [m.path.value for m in bundle.members if m.path not in written]
            if missing:
                raise TapeError(
                    f"tape bundle {bundle.name} ({receipt.tape_path}) lacks {len(missing)} member(s), "
                    f"e.g. {missing[0]}; run the archive again"
                )
        except SplashError as exc:
            detail = json.dumps({"members": digest, "error": str(exc)})
            self._ledger.record_step(StepRecord(key, StepState.FAILED, self._clock.now(), detail))
            raise
        now = self._clock.now()
        for member in bundle.members:
            self._ledger.record(
                TapeArchived(
                    path=member.path,
                    source_endpoint=source.name,
                    bundle=bundle.name,
                    tape_path=receipt.tape_path,
                    size=member.size,
                    at=now,
                )
            )
        done = {"members": digest, "tape_path": receipt.tape_path, "job_id": receipt.job_id or ""}
        self._ledger.record_step(StepRecord(key, StepState.DONE, now, json.dumps(done)))
        logger.info("archived %d file(s) to %s", len(bundle.members), receipt.tape_path)
        return receipt

    def _catalog_locations(self, receipt: TapeReceipt) -> list[str]:
        catalog_ids: set[str] = set()
        for member in receipt.members:
            for event in self._ledger.history(member.path):
                if isinstance(event, Ingested):
                    catalog_ids.add(self._ledger.catalog_id(event.dataset_key) or event.catalog_id)
        errors = []
        for catalog_id in sorted(catalog_ids):
            try:
                self._catalog.add_location(catalog_id, receipt.tape_path)
            except CatalogError as exc:
                message = (
                    f"catalog entry {catalog_id} did not take tape location {receipt.tape_path}: {exc}; "
                    "add it once the catalog is back (the tape copy is recorded in the ledger)"
                )
                logger.warning("%s", message)
                errors.append(message)
        return errors


def _detail(step: StepRecord | None) -> dict[str, str]:
    if step is None or not step.detail:
        return {}
    try:
        loaded = json.loads(step.detail)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


def _done_with(step: StepRecord | None, digest: str) -> bool:
    return step is not None and step.state is StepState.DONE and _detail(step).get("members") == digest


__all__ = [
    "HTAR_NAME",
    "MAX_BUNDLE_BYTES",
    "MAX_MEMBER_BYTES",
    "ArchiveReport",
    "ArchiveService",
    "beam_cycle",
    "first_component",
    "mtime_date",
    "plan_bundles",
]
