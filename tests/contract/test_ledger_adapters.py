"""The ledger contract, run against the fake and the SQLite ledger."""

from __future__ import annotations

from pathlib import Path

from splash_core.adapters.local import SqliteLedger
from splash_core.ports.ledger import LedgerPort
from tests.contract.ledger_contract import LedgerContract
from tests.fakes import FakeLedger


class TestFakeLedger(LedgerContract):
    """The fake honours the ledger contract."""

    def make_ledger(self, tmp_path: Path) -> LedgerPort:
        return FakeLedger()


class TestSqliteLedger(LedgerContract):
    """The SQLite ledger honours the ledger contract."""

    def make_ledger(self, tmp_path: Path) -> LedgerPort:
        return SqliteLedger(tmp_path / "splash.db")
