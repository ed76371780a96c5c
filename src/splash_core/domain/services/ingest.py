"""Recording datasets in the catalog through a ledger outbox, so a catalog outage loses nothing.

Every record goes to the outbox first; only a successful ingest takes it out. A catalog that
cannot be reached leaves the record waiting for :meth:`IngestService.flush`; a catalog that
rejects a record is an error the caller sees.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import attrs

from splash_core.domain.errors import CatalogError, CatalogUnavailable
from splash_core.domain.events import Ingested
from splash_core.domain.models import CatalogRecord

if TYPE_CHECKING:
    from collections.abc import Mapping

    from splash_core.ports.catalog import CatalogPort
    from splash_core.ports.clock import ClockPort
    from splash_core.ports.ledger import LedgerPort

logger = logging.getLogger(__name__)


@attrs.frozen
class FlushReport:
    """What one pass over the outbox did.

    ``ingested`` maps dataset keys to catalog ids; ``pending`` are still waiting (the catalog
    was unreachable); ``rejected`` maps dataset keys to the catalog's reason (they stay in the
    outbox until fixed).
    """

    ingested: Mapping[str, str] = attrs.field(factory=dict)
    pending: tuple[str, ...] = ()
    rejected: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def empty(self) -> bool:
        """True when nothing is left waiting or rejected."""
        return not self.pending and not self.rejected


class IngestService:
    """Ingest dataset records into the catalog via the ledger's outbox.

    Args:
        catalog: where records go.
        ledger: holds the outbox, catalog ids and ``Ingested`` events.
        clock: stamps events.
    """

    def __init__(self, catalog: CatalogPort, ledger: LedgerPort, clock: ClockPort) -> None:
        self._catalog = catalog
        self._ledger = ledger
        self._clock = clock

    def ingest(self, record: CatalogRecord) -> str | None:
        """Put ``record`` in the outbox, then try the catalog.

        Returns:
            The catalog id, or None when the catalog is unreachable (the record waits in the
            outbox for :meth:`flush`).

        Raises:
            CatalogError: the catalog rejected the record (it stays in the outbox).
            LedgerError: the outbox could not be written; nothing was sent.
        """
        self._ledger.enqueue_ingest(record)
        try:
            return self._send(record)
        except CatalogUnavailable as exc:
            logger.warning(
                "catalog unreachable; dataset %s (%s) waits in the outbox: %s", record.dataset_key, record.beamline, exc
            )
            return None

    def flush(self) -> FlushReport:
        """Try every record in the outbox again, oldest first; never raises for the catalog.

        Stops at the first outage (the rest stay pending); a rejected record is reported and
        the others still go.
        """
        ingested: dict[str, str] = {}
        rejected: dict[str, str] = {}
        pending: list[str] = []
        outage = False
        for record in self._ledger.pending_ingests():
            if outage:
                pending.append(record.dataset_key)
                continue
            try:
                ingested[record.dataset_key] = self._send(record)
            except CatalogUnavailable as exc:
                logger.warning("catalog unreachable while flushing the outbox: %s", exc)
                outage = True
                pending.append(record.dataset_key)
            except CatalogError as exc:
                logger.error("catalog rejected dataset %s: %s", record.dataset_key, exc)
                rejected[record.dataset_key] = str(exc)
        return FlushReport(ingested, tuple(pending), rejected)

    def _send(self, record: CatalogRecord) -> str:
        catalog_id = self._catalog.ingest(record)
        now = self._clock.now()
        # the event before the outbox entry goes: a crash in between re-ingests (idempotent), never loses it
        self._ledger.record(Ingested(record.dataset_key, catalog_id, tuple(f.path for f in record.files), now))
        self._ledger.ingest_done(record.dataset_key, catalog_id)
        logger.info("ingested dataset %s as %s", record.dataset_key, catalog_id)
        return catalog_id


__all__ = ["FlushReport", "IngestService"]
