"""`splash status` shows a copy verified by a transfer service that reports no digest (Globus)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from splash_core.adapters.local import SqliteLedger
from splash_core.domain.events import LocationVerified
from splash_core.domain.models import Checksum, ChecksumAlgorithm
from splash_core.domain.paths import RelPath
from splash_core.entrypoints.cli import app
from splash_core.entrypoints.profiles import write_local_profile

AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_status_shows_who_verified_a_copy_without_a_digest(tmp_path: Path) -> None:
    """A Globus-verified copy reads "globus (md5, digest not reported)"; a splash one shows its checksum."""
    write_local_profile(tmp_path)
    path = RelPath.parse("scans/x.h5")
    ledger = SqliteLedger(tmp_path / "splash.db")
    ledger.record(LocationVerified("nersc832", path, 10, None, "globus", AT, "task-1", ChecksumAlgorithm.MD5))
    digest = Checksum(ChecksumAlgorithm.BLAKE3, "ab" * 32)
    ledger.record(LocationVerified("data832_raw", path, 10, digest, "splash", AT))

    result = CliRunner().invoke(
        app, ["status", path.value, "--config", str(tmp_path / "splash.yaml")], env={"COLUMNS": "250"}
    )

    assert result.exit_code == 0, result.output
    rows = {line.split()[1]: line for line in result.output.splitlines() if line.count("│") > 2}
    assert "globus (md5, digest not reported)" in rows["nersc832"]
    assert "not reported" in rows["nersc832"].split("globus")[0]
    assert "blake3:" + "ab" * 32 in rows["data832_raw"]
    assert "None" not in result.output
