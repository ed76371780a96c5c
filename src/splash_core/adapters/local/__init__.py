"""The embedded local facility: every endpoint a folder, every job a subprocess, state in SQLite.

Useful for development, demos and tests that want real files, and as a small single-machine
deployment. The stateful adapters share one SQLite file (``<workspace>/splash.db``); each takes
a :class:`SqliteDatabase` or the file's path.
"""

from splash_core.adapters.local.catalog import SqliteCatalog
from splash_core.adapters.local.clock import SystemClock
from splash_core.adapters.local.database import SqliteDatabase
from splash_core.adapters.local.hashing import hash_bytes, hash_file, new_hasher
from splash_core.adapters.local.jobs import LocalJobs
from splash_core.adapters.local.ledger import SqliteLedger
from splash_core.adapters.local.scheduler import SqliteScheduler
from splash_core.adapters.local.storage import LocalStorage
from splash_core.adapters.local.transfer import LocalTransfer

__all__ = [
    "LocalJobs",
    "LocalStorage",
    "LocalTransfer",
    "SqliteCatalog",
    "SqliteDatabase",
    "SqliteLedger",
    "SqliteScheduler",
    "SystemClock",
    "hash_bytes",
    "hash_file",
    "new_hasher",
]
