"""Ports: the protocols the domain services depend on; adapters implement them."""

from splash_core.ports.catalog import CatalogPort
from splash_core.ports.clock import ClockPort
from splash_core.ports.hpc import HPCJobPort
from splash_core.ports.ledger import LedgerPort
from splash_core.ports.scheduler import SchedulerPort
from splash_core.ports.storage import StoragePort
from splash_core.ports.tape import TapeArchivePort
from splash_core.ports.transfer import TransferPort

__all__ = [
    "CatalogPort",
    "ClockPort",
    "HPCJobPort",
    "LedgerPort",
    "SchedulerPort",
    "StoragePort",
    "TapeArchivePort",
    "TransferPort",
]
