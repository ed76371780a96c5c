"""The SQLite-backed adapters in one place: ledger, catalog, scheduler and their database."""

from splash_core.adapters.local.catalog import SqliteCatalog
from splash_core.adapters.local.database import SqliteDatabase
from splash_core.adapters.local.ledger import SqliteLedger
from splash_core.adapters.local.scheduler import SqliteScheduler

__all__ = ["SqliteCatalog", "SqliteDatabase", "SqliteLedger", "SqliteScheduler"]
