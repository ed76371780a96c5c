"""The `splash` CLI on the embedded local facility: real files, real jobs, one SQLite file."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from splash_core.entrypoints.cli import app
from splash_core.entrypoints.profiles import write_local_profile

runner = CliRunner()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A fresh local-profile workspace."""
    write_local_profile(tmp_path)
    return tmp_path


def splash(workspace: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--config", str(workspace / "splash.yaml")], env={"COLUMNS": "250"})
    return result.exit_code, result.output


def root(workspace: Path, endpoint: str) -> Path:
    return workspace / "facilities" / endpoint


def put(workspace: Path, endpoint: str, rel: str, data: bytes, age_days: float = 0.0) -> Path:
    path = root(workspace, endpoint) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if age_days:
        old = path.stat().st_mtime - age_days * 86400
        os.utime(path, (old, old))
    return path


def ledger_rows(workspace: Path) -> int:
    with sqlite3.connect(workspace / "splash.db") as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        return sum(conn.execute(f"select count(*) from {t}").fetchone()[0] for t in tables if t != "meta")


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


class TestDispatch733:
    """7.3.3 new-file pipeline through `splash dispatch`."""

    def test_batch_is_copied_to_both_destinations_and_verified(self, workspace: Path) -> None:
        """Every file of a batch lands verified on BeeGFS and NERSC CFS."""
        for i in range(5):
            put(workspace, "data733", f"run1/img_{i:03d}.tif", os.urandom(2048 + i))
        code, out = splash(workspace, "dispatch", "bl733", "run1")
        assert code == 0, out
        for dest in ("beegfs733", "nersc733_alsdev_raw"):
            copied = files_under(root(workspace, dest))
            assert [p.name for p in copied] == [f"img_{i:03d}.tif" for i in range(5)]
            for p in copied:
                assert p.read_bytes() == (root(workspace, "data733") / "run1" / p.name).read_bytes()
        code, out = splash(workspace, "status", "run1/img_000.tif")
        assert code == 0
        assert "nersc733_alsdev_raw" in out
        assert "beegfs733" in out

    def test_dispatching_twice_copies_once(self, workspace: Path) -> None:
        """A second dispatch of the same file finds it verified and copies nothing."""
        put(workspace, "data733", "a.tif", b"x" * 4096)
        assert splash(workspace, "dispatch", "bl733", "a.tif")[0] == 0
        copy = root(workspace, "nersc733_alsdev_raw") / "a.tif"
        inode, mtime = copy.stat().st_ino, copy.stat().st_mtime_ns
        code, out = splash(workspace, "dispatch", "bl733", "a.tif")
        assert code == 0, out
        assert (copy.stat().st_ino, copy.stat().st_mtime_ns) == (inode, mtime)

    def test_export_controlled_data_never_reaches_an_off_site_endpoint(self, workspace: Path) -> None:
        """With --export-controlled, the NERSC hop is skipped and only on-site copies exist."""
        put(workspace, "data733", "secret.tif", b"classified" * 100)
        code, out = splash(workspace, "dispatch", "bl733", "secret.tif", "--export-controlled")
        assert code == 0, out
        assert (root(workspace, "beegfs733") / "secret.tif").exists()
        assert not any(root(workspace, "nersc733_alsdev_raw").rglob("*"))

    @pytest.mark.parametrize("bad", ["../outside.tif", "/etc/passwd", "a\x01b.tif", ""])
    def test_bad_paths_exit_2_and_write_nothing(self, workspace: Path, bad: str) -> None:
        """Traversal, absolute and control-character paths are refused before anything is written."""
        before = ledger_rows(workspace) if (workspace / "splash.db").exists() else 0
        code, out = splash(workspace, "dispatch", "bl733", bad)
        assert code == 2, out
        assert "error:" in out
        assert not any(root(workspace, "beegfs733").rglob("*"))
        after = ledger_rows(workspace) if (workspace / "splash.db").exists() else 0
        assert after == before

    def test_escaping_symlink_is_refused_with_exit_2(
        self, workspace: Path, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        """A symlink on the source that points outside its root is refused; nothing is copied."""
        outside = tmp_path_factory.mktemp("outside") / "private.tif"
        outside.write_bytes(b"not yours")
        link = root(workspace, "data733") / "link.tif"
        link.symlink_to(outside)
        code, out = splash(workspace, "dispatch", "bl733", "link.tif")
        assert code == 2, out
        assert "outside" in out
        assert not any(root(workspace, "beegfs733").rglob("*"))
        assert not any(root(workspace, "nersc733_alsdev_raw").rglob("*"))

    def test_missing_file_exits_2(self, workspace: Path) -> None:
        """A path that does not exist on the source is bad input."""
        code, out = splash(workspace, "dispatch", "bl733", "nope.tif")
        assert code == 2
        assert "does not exist on endpoint data733" in out

    def test_unknown_beamline_exits_2(self, workspace: Path) -> None:
        """An unknown beamline names the known ones."""
        code, out = splash(workspace, "dispatch", "bl999", "a.tif")
        assert code == 2
        assert "bl733" in out


class TestPrune:
    """`splash prune` on the local facility."""

    def dispatch_and_age(self, workspace: Path, name: str, data: bytes) -> None:
        put(workspace, "data733", name, data)
        code, out = splash(workspace, "dispatch", "bl733", name)
        assert code == 0, out

    def test_due_file_with_verified_copy_is_pruned(self, workspace: Path) -> None:
        """After 180 days, data733's file goes because the NERSC copy verifies again now."""
        self.dispatch_and_age(workspace, "old.tif", b"o" * 5000)
        code, out = splash(workspace, "prune", "--at", "2099-01-01T00:00:00Z")
        assert code == 0, out
        assert not (root(workspace, "data733") / "old.tif").exists()
        assert (root(workspace, "nersc733_alsdev_raw") / "old.tif").exists()

    def test_nothing_is_pruned_before_retention_ends(self, workspace: Path) -> None:
        """A prune now deletes nothing that is not due."""
        self.dispatch_and_age(workspace, "new.tif", b"n" * 5000)
        code, out = splash(workspace, "prune")
        assert code == 0, out
        assert (root(workspace, "data733") / "new.tif").exists()

    def test_corrupted_copy_blocks_the_prune_with_a_reason(self, workspace: Path) -> None:
        """If the only checked copy was corrupted, the file is kept and the reason is printed."""
        self.dispatch_and_age(workspace, "c.tif", b"c" * 5000)
        copy = root(workspace, "nersc733_alsdev_raw") / "c.tif"
        copy.write_bytes(b"X" + copy.read_bytes()[1:])
        code, out = splash(workspace, "prune", "--at", "2099-01-01T00:00:00Z")
        assert code == 1
        assert (root(workspace, "data733") / "c.tif").exists()
        assert "kept" in out
        assert "nersc733_alsdev_raw" in out

    def test_dry_run_deletes_nothing(self, workspace: Path) -> None:
        """--dry-run lists what would go and keeps it."""
        self.dispatch_and_age(workspace, "d.tif", b"d" * 5000)
        code, out = splash(workspace, "prune", "--dry-run", "--at", "2099-01-01T00:00:00Z")
        assert code == 0, out
        assert "would delete" in out
        assert (root(workspace, "data733") / "d.tif").exists()

    def test_bad_time_exits_2(self, workspace: Path) -> None:
        """--at must be ISO-8601."""
        code, out = splash(workspace, "prune", "--at", "next tuesday")
        assert code == 2
        assert "ISO-8601" in out


class TestMoveReconcileFlightCheck:
    """`splash move`, `splash reconcile` and `splash flight-check`."""

    def test_move_copies_and_verifies(self, workspace: Path) -> None:
        """A move between two endpoints verifies each copy."""
        put(workspace, "data832_raw", "scans/x.h5", b"h" * 10000)
        code, out = splash(workspace, "move", "data832_raw", "nersc832_alsdev_raw", "scans/x.h5")
        assert code == 0, out
        assert (root(workspace, "nersc832_alsdev_raw") / "scans/x.h5").read_bytes() == b"h" * 10000
        assert "1 copied and verified" in out

    def test_move_to_unknown_endpoint_exits_2(self, workspace: Path) -> None:
        """An unknown endpoint is bad input."""
        put(workspace, "data832_raw", "x.h5", b"h")
        code, out = splash(workspace, "move", "data832_raw", "mars", "x.h5")
        assert code == 2
        assert "mars" in out

    def test_move_export_controlled_off_site_is_refused(self, workspace: Path) -> None:
        """An export-controlled move to NERSC fails and writes nothing there."""
        put(workspace, "data832_raw", "x.h5", b"h" * 100)
        code, _out = splash(workspace, "move", "data832_raw", "nersc832_alsdev_raw", "x.h5", "--export-controlled")
        assert code == 1
        assert not any(root(workspace, "nersc832_alsdev_raw").rglob("*"))

    def test_reconcile_dispatches_files_that_arrived_unwatched(self, workspace: Path) -> None:
        """Files written while nothing ran are found and moved."""
        for i in range(3):
            put(workspace, "data733", f"late/{i}.tif", os.urandom(100), age_days=1)
        code, out = splash(workspace, "reconcile", "bl733", "--dry-run")
        assert code == 0, out
        assert "3 file(s)" in out
        assert not any(root(workspace, "nersc733_alsdev_raw").rglob("*.tif"))
        code, out = splash(workspace, "reconcile", "bl733")
        assert code == 0, out
        assert len(list(root(workspace, "nersc733_alsdev_raw").rglob("*.tif"))) == 3
        code, out = splash(workspace, "reconcile", "bl733", "--dry-run")
        assert "0 file(s)" in out

    def test_flight_check_travels_the_route(self, workspace: Path) -> None:
        """The probe goes spot832 -> data832_raw -> nersc832_alsdev_raw, verified at each hop."""
        code, out = splash(workspace, "flight-check", "bl832")
        assert code == 0, out
        assert "spot832 -> data832_raw" in out
        assert len(list(root(workspace, "nersc832_alsdev_raw").rglob("probe.bin"))) == 1

    def test_unknown_flight_check_route_exits_2(self, workspace: Path) -> None:
        """An unknown route names the known ones."""
        code, out = splash(workspace, "flight-check", "nowhere")
        assert code == 2
        assert "bl832" in out
