"""The SciCat catalog: :class:`CatalogPort` over the SciCat v3 REST API.

Every operation is idempotent, so a whole operation is what gets retried (with stamina, within
the bounds of :class:`SciCatSettings`) when SciCat cannot be reached, throttles (429) or fails
(5xx); after the last attempt :class:`~splash_core.domain.errors.CatalogUnavailable` is raised
and the domain keeps the record in its outbox. A request SciCat refuses (400, 403, 422, ...)
raises :class:`~splash_core.domain.errors.CatalogError` at once, with SciCat's reason.

Ingest is idempotent by dataset key: the pid is ``<pid_prefix>/<dataset key>``; the dataset is
looked up first, created when missing (a 409 from a concurrent creator counts as found), and
otherwise brought up to date (its file-derived fields, ``scientificMetadata`` and
origdatablocks), so re-ingesting after more files arrived updates it. Added locations (e.g. a
tape path) are kept in ``scientificMetadata.splash_core.locations``; see :mod:`._mapping` for
the full layout.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx
import stamina

from splash_core.adapters.scicat import _mapping as m
from splash_core.adapters.scicat._api import SciCatApi
from splash_core.adapters.scicat._errors import retry_decision
from splash_core.adapters.scicat.settings import SciCatSettings
from splash_core.domain.errors import CatalogError
from splash_core.domain.models import CatalogRecord
from splash_core.ports.catalog import CatalogPort
from splash_core.ports.clock import ClockPort

logger = logging.getLogger(__name__)

T = TypeVar("T")


class SciCatCatalog(CatalogPort):
    """Datasets in SciCat, with pids ``<pid_prefix>/<dataset key>``.

    Nothing is contacted when it is made: the first call logs in.

    Args:
        settings: where SciCat is, ownership of new datasets, retry bounds.
        username, password: the SciCat functional account (never logged or shown).
        client: the HTTP client (tests pass one with a mock transport); by default one is made
            on first use and closed by :meth:`close`.
        clock: the time of datasets whose files have no mtime (default: the system clock).
    """

    def __init__(
        self,
        settings: SciCatSettings,
        *,
        username: str,
        password: str,
        client: httpx.Client | None = None,
        clock: ClockPort | None = None,
    ) -> None:
        self._settings = settings
        self._api = SciCatApi(settings, username=username, password=password, client=client)
        self._clock = clock

    def __repr__(self) -> str:
        return f"SciCatCatalog({self._api.base}, owner_group={self._settings.owner_group!r})"

    @property
    def settings(self) -> SciCatSettings:
        """The settings in use."""
        return self._settings

    def close(self) -> None:
        """Close the HTTP client this catalog made (a new one is made if it is used again)."""
        self._api.close()

    def __enter__(self) -> SciCatCatalog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- CatalogPort ---------------------------------------------------------------------

    def ingest(self, record: CatalogRecord) -> str:
        """Create or update the dataset of ``record``; return its pid (the same for the same key).

        Raises:
            CatalogUnavailable: SciCat could not be reached (after bounded retries); retry later.
            CatalogError: SciCat rejected the dataset (the message names the dataset key and
                SciCat's reason), or the login was refused.
        """
        m.check_record(record)
        pid = self._settings.pid(record.dataset_key)
        return self._retrying(functools.partial(self._ingest_once, record, pid))

    def add_location(self, catalog_id: str, location: str) -> None:
        """Attach ``location`` (e.g. a tape path) to the dataset ``catalog_id``; repeats are ignored.

        Raises:
            CatalogUnavailable: SciCat could not be reached (after bounded retries).
            CatalogError: SciCat has no such dataset, or refused the change.
        """
        self._retrying(functools.partial(self._add_location_once, catalog_id, location))

    def get(self, catalog_id: str) -> CatalogRecord | None:
        """The record of the dataset ``catalog_id`` (a pid), or None when SciCat has none.

        Raises:
            CatalogUnavailable: SciCat could not be reached (after bounded retries).
            CatalogError: SciCat refused the request, or the dataset cannot be mapped.
        """
        return self._retrying(functools.partial(self._get_once, catalog_id))

    def locations(self, catalog_id: str) -> tuple[str, ...]:
        """The dataset's own location followed by those added, in the order added (empty if unknown)."""

        def once() -> tuple[str, ...]:
            dataset = self._api.get_dataset(catalog_id, what=f"reading dataset {catalog_id}")
            if dataset is None:
                return ()
            return (m.original_location(dataset), *m.added_locations(dataset))

        return self._retrying(once)

    # --- operations (each idempotent, retried as a whole) ---------------------------------

    def _ingest_once(self, record: CatalogRecord, pid: str) -> str:
        what = f"ingesting dataset {record.dataset_key} as {pid}"
        existing = self._api.get_dataset(pid, what=what)
        if existing is None:
            created_ms = m.creation_ms(record, self._now())
            s = self._settings
            body = m.new_dataset(
                record,
                pid=pid,
                creation_ms=created_ms,
                owner=s.owner,
                owner_group=s.owner_group,
                access_groups=s.access_groups,
                contact_email=s.contact_email,
                investigator=s.principal_investigator,
                creation_location=s.creation_location_of(record.beamline),
                used_software=s.used_software,
            )
            if self._api.create_dataset(body, what=what):
                self._sync_blocks(pid, m.datablocks(record, stand_in_ms=created_ms), [], what)
                logger.info("created SciCat dataset %s for dataset %s (%s)", pid, record.dataset_key, record.beamline)
                return pid
            existing = self._api.get_dataset(pid, what=what)
            if existing is None:
                raise CatalogError(
                    f"SciCat at {self._api.base} says dataset {pid} exists but does not show it to this account "
                    f"while {what}; give options.scicat.owner_group access to it or change options.scicat.pid_prefix"
                )
        self._update(record, pid, existing, what)
        return pid

    def _update(self, record: CatalogRecord, pid: str, existing: Mapping[str, Any], what: str) -> None:
        wanted = m.dataset_type(record)
        if existing.get("type") not in (None, wanted):
            raise CatalogError(
                f"SciCat rejected {what}: SciCat holds it as a {existing.get('type')} dataset, and a record of kind "
                f"{record.kind!r} would make it {wanted}; SciCat cannot change a dataset's type, so ingest it "
                f"under another key"
            )
        created = existing.get("creationTime")
        stand_in = m.parse_ms(created, what) if created is not None else m.creation_ms(record, self._now())
        blocks = self._api.datablocks(pid, what=what)
        self._sync_blocks(pid, m.datablocks(record, stand_in_ms=stand_in), blocks, what)
        fields = m.mutable_fields(
            record,
            self._settings.creation_location_of(record.beamline),
            existing=existing,
            locations=m.added_locations(existing),
        )
        changed = {key: value for key, value in fields.items() if existing.get(key) != value}
        if changed:
            self._api.update_dataset(pid, changed, what=what)
            logger.info("updated SciCat dataset %s (%s)", pid, ", ".join(sorted(changed)))

    def _sync_blocks(
        self, pid: str, wanted: Sequence[Mapping[str, Any]], existing: Sequence[Mapping[str, Any]], what: str
    ) -> None:
        """Make the dataset's origdatablocks list exactly ``wanted``: keep equal ones, rewrite, add, delete."""
        spare = list(existing)
        missing: list[Mapping[str, Any]] = []
        for block in wanted:
            signature = m.block_signature(block, what)
            same = next((b for b in spare if m.block_signature(b, what) == signature), None)
            if same is None:
                missing.append(block)
            else:
                spare.remove(same)
        for block in missing:
            if spare:
                self._api.update_datablock(_block_id(spare.pop(0), what), block, what=what)
            else:
                body = {
                    "datasetId": pid,
                    "ownerGroup": self._settings.owner_group,
                    "accessGroups": list(self._settings.access_groups),
                    **block,
                }
                self._api.create_datablock(body, what=what)
        for block in spare:
            self._api.delete_datablock(_block_id(block, what), what=what)

    def _add_location_once(self, catalog_id: str, location: str) -> None:
        what = f"adding location {location} to dataset {catalog_id}"
        dataset = self._api.get_dataset(catalog_id, what=what)
        if dataset is None:
            raise CatalogError(
                f"SciCat at {self._api.base} has no dataset {catalog_id!r} (or does not show it to this account); "
                f"ingest it before adding a location"
            )
        science = m.with_location(dataset, location)
        if science is not None:
            self._api.update_dataset(catalog_id, {"scientificMetadata": science}, what=what)
            logger.info("added location %s to SciCat dataset %s", location, catalog_id)

    def _get_once(self, catalog_id: str) -> CatalogRecord | None:
        what = f"reading dataset {catalog_id}"
        dataset = self._api.get_dataset(catalog_id, what=what)
        if dataset is None:
            return None
        return m.to_record(dataset, self._api.datablocks(catalog_id, what=what))

    # --- helpers ---------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self._clock.now() if self._clock is not None else datetime.now(UTC)

    def _retry_on(self, exc: Exception) -> bool | float:
        return retry_decision(exc, self._settings.retry_wait_max_s)

    def _retrying(self, operation: Callable[[], T]) -> T:
        s = self._settings
        for attempt in stamina.retry_context(
            on=self._retry_on,
            attempts=s.retry_attempts,
            timeout=s.retry_timeout_s,
            wait_initial=min(0.5, s.retry_wait_max_s),
            wait_max=s.retry_wait_max_s,
        ):
            with attempt:
                return operation()
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover


def _block_id(block: Mapping[str, Any], what: str) -> str:
    block_id = block.get("_id") or block.get("id")
    if not block_id:
        raise CatalogError(f"SciCat listed an origdatablock without an id while {what}; cannot update it")
    return str(block_id)


__all__ = ["SciCatCatalog"]
