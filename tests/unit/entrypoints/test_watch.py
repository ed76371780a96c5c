"""The file watcher: the batching rules with a fake clock, the loop on a real folder, `splash watch --once`."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from splash_core.domain.errors import InvalidInput
from splash_core.entrypoints.api import open_config
from splash_core.entrypoints.cli import app
from splash_core.entrypoints.config import settings_from_dict
from splash_core.entrypoints.profiles import production_dict, write_local_profile
from splash_core.entrypoints.watch import ArrivalBatcher, Watcher, watch_root

T0 = 1_700_000_000.0


def batcher(settle: float = 5.0, files: int = 3, seconds: float = 10.0) -> ArrivalBatcher:
    return ArrivalBatcher(settle_seconds=settle, batch_files=files, batch_seconds=seconds)


class TestArrivalBatcher:
    """Events and a fake clock in, batches out."""

    def test_a_file_written_long_ago_is_finished_at_once(self) -> None:
        """Seen once with an old mtime: finished now, sent when the batch time is up."""
        b = batcher()
        b.seen("a.tif", 10, T0 - 60, now=T0)

        assert b.poll(T0) == []
        assert b.poll(T0 + 9.9) == []
        assert b.poll(T0 + 10) == [("a.tif",)]
        assert b.waiting == 0

    def test_a_growing_file_waits_until_size_and_mtime_settle(self) -> None:
        """Each change restarts the settle time."""
        b = batcher(settle=5, seconds=0)
        b.seen("a.tif", 1, T0, now=T0)
        b.seen("a.tif", 2, T0 + 3, now=T0 + 3)

        assert b.poll(T0 + 7) == []  # 4 s since the last change
        assert b.unsettled == ("a.tif",)
        b.seen("a.tif", 2, T0 + 3, now=T0 + 8)  # unchanged
        assert b.poll(T0 + 8) == [("a.tif",)]

    def test_a_full_batch_goes_at_once(self) -> None:
        """batch_files finished files make a batch without waiting; the rest waits for the time."""
        b = batcher(files=3)
        for i in range(7):
            b.seen(f"f{i}.tif", 1, T0 - 60, now=T0)

        assert b.poll(T0) == [("f0.tif", "f1.tif", "f2.tif"), ("f3.tif", "f4.tif", "f5.tif")]
        assert b.poll(T0 + 10) == [("f6.tif",)]

    def test_batch_seconds_counts_from_the_oldest_finished_file(self) -> None:
        """A file that finished later rides along with the first one."""
        b = batcher(settle=0, seconds=10)
        b.seen("a.tif", 1, T0, now=T0)
        assert b.poll(T0) == []
        b.seen("b.tif", 1, T0 + 6, now=T0 + 6)

        assert b.poll(T0 + 6) == []
        assert b.poll(T0 + 10) == [("a.tif", "b.tif")]

    def test_a_file_deleted_before_it_settles_is_forgotten(self) -> None:
        """A temporary file that disappears is never sent."""
        b = batcher(seconds=0)
        b.seen("tmp.tif", 1, T0, now=T0)
        b.gone("tmp.tif")

        assert b.poll(T0 + 100) == []
        assert b.waiting == 0

    def test_a_sent_file_seen_unchanged_is_not_sent_again(self) -> None:
        """A metadata-only event on a sent file does nothing; a rewrite sends it again."""
        b = batcher(seconds=0)
        b.seen("a.tif", 1, T0 - 60, now=T0)
        assert b.poll(T0) == [("a.tif",)]

        b.seen("a.tif", 1, T0 - 60, now=T0 + 1)
        assert b.poll(T0 + 100) == []

        b.seen("a.tif", 2, T0 + 200, now=T0 + 200)
        assert b.poll(T0 + 204) == []
        assert b.poll(T0 + 205) == [("a.tif",)]

    def test_an_mtime_in_the_future_counts_from_when_it_was_seen(self) -> None:
        """Clock skew on a network filesystem does not hold a file back for hours."""
        b = batcher(settle=5, seconds=0)
        b.seen("a.tif", 1, T0 + 3600, now=T0)

        assert b.poll(T0 + 5) == [("a.tif",)]

    def test_drain_sends_finished_files_and_keeps_unfinished_ones(self) -> None:
        """On stop, what has finished goes in batches; a file still being written stays."""
        b = batcher(files=2)
        for name in ("a.tif", "b.tif", "c.tif"):
            b.seen(name, 1, T0 - 60, now=T0)
        b.seen("writing.tif", 1, T0, now=T0)
        b.poll(T0)  # a, b go as a full batch

        assert b.drain() == [("c.tif",)]
        assert b.unsettled == ("writing.tif",)

    def test_bad_settings_are_refused(self) -> None:
        """A batch of no files is refused."""
        with pytest.raises(InvalidInput):
            batcher(files=0)


class Recorder:
    """A submit function that records batches."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, ...]] = []
        self.seen = threading.Event()

    def __call__(self, batch: tuple[str, ...]) -> str:
        self.batches.append(batch)
        self.seen.set()
        return "ok"

    @property
    def files(self) -> list[str]:
        return sorted(f for b in self.batches for f in b)


def write(root: Path, rel: str, *, age_s: float = 0.0) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(256))
    if age_s:
        old = time.time() - age_s
        os.utime(path, (old, old))
    return path


class TestWatcher:
    """The loop on a real folder with a recording submit."""

    def test_once_sends_missed_batches_then_files_being_written(self, tmp_path: Path) -> None:
        """The reconcile's batches go first; recent files are sent once they settle; others are ignored."""
        write(tmp_path, "old/a.tif", age_s=3600)
        write(tmp_path, "new/b.tif")
        write(tmp_path, "new/notes.log")
        sent = Recorder()
        watcher = Watcher(
            tmp_path,
            include=("*.tif",),
            batcher=batcher(settle=0.2, files=10, seconds=30),
            submit=sent,
            catch_up=lambda: [("old/a.tif",)],
            tick=0.05,
        )

        summary = watcher.run(threading.Event(), once=True)

        assert sent.batches == [("old/a.tif",), ("new/b.tif",)]
        assert (summary.reconciled, summary.batches, summary.files, summary.failed_batches) == (1, 2, 2, 0)

    def test_a_failed_batch_is_counted_and_the_watcher_goes_on(self, tmp_path: Path) -> None:
        """An exception from submit is logged, counted, and the next batch still goes."""
        write(tmp_path, "a.tif")
        calls: list[tuple[str, ...]] = []

        def flaky(batch: tuple[str, ...]) -> str:
            calls.append(batch)
            if len(calls) == 1:
                raise RuntimeError("server down")
            return "ok"

        watcher = Watcher(
            tmp_path,
            include=(),
            batcher=batcher(settle=0.1, seconds=0),
            submit=flaky,
            catch_up=lambda: [("missed.tif",)],
            tick=0.05,
        )

        summary = watcher.run(threading.Event(), once=True)

        assert calls == [("missed.tif",), ("a.tif",)]
        assert (summary.failed_batches, summary.batches) == (1, 1)

    def test_watching_sees_files_created_after_start_and_stops_cleanly(self, tmp_path: Path) -> None:
        """Files (also in a new folder) written while watching are sent; setting stop ends the run."""
        sent = Recorder()
        started = threading.Event()

        def catch_up() -> list[tuple[str, ...]]:
            started.set()
            return []

        watcher = Watcher(
            tmp_path,
            include=("*.tif",),
            batcher=batcher(settle=0.3, files=3, seconds=0.2),
            submit=sent,
            catch_up=catch_up,
            tick=0.1,
        )
        stop = threading.Event()
        result: list[object] = []
        thread = threading.Thread(target=lambda: result.append(watcher.run(stop)), daemon=True)
        thread.start()
        try:
            assert started.wait(30), "the watcher did not start"
            for i in range(4):
                write(tmp_path, f"scan/{i}.tif")
            write(tmp_path, "scan/skip.txt")
            deadline = time.monotonic() + 30
            while len(sent.files) < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join(30)
        assert not thread.is_alive()
        assert sent.files == [f"scan/{i}.tif" for i in range(4)]
        assert result
        assert getattr(result[0], "files", None) == 4


def test_globus_endpoints_need_the_watcher_on_the_beamline_machine(tmp_path: Path) -> None:
    """With a Globus source the watcher says where it must run and asks for --root."""
    settings = settings_from_dict(production_dict(), base_dir=tmp_path, check_secrets=False)

    with pytest.raises(InvalidInput, match="beamline machine") as info:
        watch_root(SimpleNamespace(settings=settings), "bl733", None)  # type: ignore[arg-type]

    assert "--root" in str(info.value)
    assert watch_root(SimpleNamespace(settings=settings), "bl733", tmp_path) == tmp_path.resolve()  # type: ignore[arg-type]


def test_splash_watch_once_dispatches_directly_on_the_local_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`splash watch bl733 --via direct --once`: old and fresh files end verified at BeeGFS and NERSC."""
    monkeypatch.delenv("SPLASH_CONFIG", raising=False)
    config = write_local_profile(tmp_path)
    source = tmp_path / "facilities" / "data733"
    old = [write(source, f"run1/old_{i}.tif", age_s=3600).relative_to(source).as_posix() for i in range(3)]
    # written 10 s ago: too recent for the reconcile (the beamline settles for 30 s), old enough for --settle-seconds
    fresh = [write(source, f"run2/new_{i}.tif", age_s=10).relative_to(source).as_posix() for i in range(3)]
    write(source, "run2/ignored.bin")

    result = CliRunner().invoke(
        app,
        ["watch", "bl733", "--via", "direct", "--once", "--settle-seconds", "0.3", "--config", str(config)],
        env={"COLUMNS": "200"},
    )

    assert result.exit_code == 0, result.output
    assert "3 file(s) reconciled" in result.output
    splash = open_config(config)
    for path in old + fresh:
        assert {loc.endpoint for loc in splash.status(path).locations} == {
            "data733",
            "beegfs733",
            "nersc733_alsdev_raw",
        }
    assert not (tmp_path / "facilities" / "beegfs733" / "run2" / "ignored.bin").exists()
