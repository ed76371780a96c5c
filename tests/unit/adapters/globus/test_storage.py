"""GlobusStorage against the simulated Globus service."""

from __future__ import annotations

import pytest
import responses

from splash_core.adapters.globus import GlobusStorage
from splash_core.domain.errors import (
    ChecksumUnsupported,
    PathEscapesRoot,
    PathNotFound,
    StorageError,
    TransientStorageError,
)
from splash_core.domain.models import ChecksumAlgorithm, Endpoint, Site
from splash_core.domain.paths import RelPath
from tests.fakes.clock import FakeClock
from tests.unit.adapters.globus.conftest import COLL_A
from tests.unit.adapters.globus.simulated import BASE, SimulatedGlobus


def p(raw: str) -> RelPath:
    """Shorthand for a parsed relative path."""
    return RelPath.parse(raw)


def test_stat_gives_size_and_mtime_or_none(sim: SimulatedGlobus, storage: GlobusStorage, source: Endpoint) -> None:
    """A file has its size and mtime; a missing path is None."""
    sim.put(COLL_A, "/data/raw/scan/1.h5", b"12345")

    record = storage.stat(source, p("scan/1.h5"))

    assert record is not None
    assert (record.path, record.size, record.checksum) == (p("scan/1.h5"), 5, None)
    assert record.mtime == 1767225600.0
    assert storage.stat(source, p("scan/2.h5")) is None


def test_list_walks_every_folder_across_pages(sim: SimulatedGlobus, storage: GlobusStorage, source: Endpoint) -> None:
    """Every file below the root is listed, however many ls pages each folder takes."""
    names = ["a.h5", "b.h5", "c.h5", "d/e.h5", "d/f/g.h5", "d/f/h.h5", ".hidden"]
    for name in names:
        sim.put(COLL_A, f"/data/raw/{name}", name.encode())
    sim.mkdirs(COLL_A, "/data/raw/empty")

    listed = {r.path.value: r.size for r in storage.list(source)}

    assert listed == {name: len(name) for name in names}
    ls_calls = [c for c in sim.calls if c[1].endswith("/ls")]
    assert len(ls_calls) > 5  # page size 2 forces several pages for the root


def test_list_below_a_prefix(sim: SimulatedGlobus, storage: GlobusStorage, source: Endpoint) -> None:
    """A folder prefix lists its files; nothing lies below a file or a missing prefix."""
    for name in ["x/1.h5", "x/y/2.h5", "z/3.h5"]:
        sim.put(COLL_A, f"/data/raw/{name}", b"d")

    assert sorted(r.path.value for r in storage.list(source, p("x"))) == ["x/1.h5", "x/y/2.h5"]
    assert list(storage.list(source, p("z/3.h5"))) == []
    assert list(storage.list(source, p("nope"))) == []


def test_list_skips_symlinks_that_leave_the_root(
    sim: SimulatedGlobus, storage: GlobusStorage, source: Endpoint
) -> None:
    """A symlinked file pointing outside the root is not listed; one inside is."""
    sim.put(COLL_A, "/data/raw/real.h5", b"r")
    sim.symlink(COLL_A, "/data/raw/inside.h5", "real.h5")
    sim.symlink(COLL_A, "/data/raw/outside.h5", "/etc/passwd")

    assert sorted(r.path.value for r in storage.list(source)) == ["inside.h5", "real.h5"]


def test_globus_cannot_checksum_on_demand(sim: SimulatedGlobus, storage: GlobusStorage, source: Endpoint) -> None:
    """No algorithms are offered; asking anyway names the endpoint and what to do instead."""
    sim.put(COLL_A, "/data/raw/x.h5", b"x")

    assert storage.checksum_algorithms(source) == ()
    with pytest.raises(ChecksumUnsupported, match=r"spot832 .* cannot compute a sha256 checksum of x\.h5"):
        storage.checksum(source, p("x.h5"), ChecksumAlgorithm.SHA256)
    with pytest.raises(PathNotFound):
        storage.checksum(source, p("missing.h5"), ChecksumAlgorithm.MD5)


def test_a_symlinked_folder_leading_outside_is_followed(
    sim: SimulatedGlobus, storage: GlobusStorage, source: Endpoint
) -> None:
    """Paths through a symlinked folder whose target leaves the root are neither contained nor deleted."""
    sim.put(COLL_A, "/outside/victim.txt", b"must survive")
    sim.symlink(COLL_A, "/data/raw/linked", "/outside")
    sim.symlink(COLL_A, "/data/raw/inner", "sub")
    sim.put(COLL_A, "/data/raw/sub/keep.h5", b"k")

    assert not storage.contains(source, p("linked"))
    assert not storage.contains(source, p("linked/victim.txt"))
    assert storage.contains(source, p("inner/keep.h5"))
    with pytest.raises(PathEscapesRoot, match="through linked"):
        storage.delete(source, p("linked/victim.txt"))
    with pytest.raises(PathEscapesRoot):
        storage.delete(source, p("linked"), recursive=True)
    assert sim.read(COLL_A, "/outside/victim.txt") == b"must survive"
    assert not sim.tasks


def test_stat_of_a_folder_is_none(sim: SimulatedGlobus, storage: GlobusStorage, source: Endpoint) -> None:
    """Only regular files have a record."""
    sim.put(COLL_A, "/data/raw/scan/1.h5", b"1")
    assert storage.stat(source, p("scan")) is None


def test_contains_checks_symlink_targets_it_can_see(
    sim: SimulatedGlobus, storage: GlobusStorage, source: Endpoint
) -> None:
    """Plain paths and missing paths are inside; a symlink whose target leaves the root is not."""
    sim.put(COLL_A, "/data/raw/plain.h5", b"x")
    sim.symlink(COLL_A, "/data/raw/escape.h5", "../../etc/shadow")
    sim.symlink(COLL_A, "/data/raw/sub/ok.h5", "../plain.h5")

    assert storage.contains(source, p("plain.h5"))
    assert storage.contains(source, p("not/yet/there.h5"))
    assert storage.contains(source, p("sub/ok.h5"))
    assert not storage.contains(source, p("escape.h5"))


def test_mkdir_creates_parents_and_ignores_existing(
    sim: SimulatedGlobus, storage: GlobusStorage, source: Endpoint
) -> None:
    """A nested folder is created with its parents; doing it again is fine."""
    storage.mkdir(source, p("a/b/c"))
    storage.mkdir(source, p("a/b/c"))

    assert sim.is_dir(COLL_A, "/data/raw/a/b/c")
    assert storage.stat(source, p("a/b")) is None  # folders have no file record


def test_mkdir_under_a_missing_root_fails(sim: SimulatedGlobus, storage: GlobusStorage) -> None:
    """Without the endpoint root there is nothing to create folders in."""
    orphan = Endpoint(
        "lost", "als", "/nowhere/at/all", Site.ON_SITE, collection_id="cccccccc-0000-4000-8000-0000000000c3"
    )
    sim.mkdirs("cccccccc-0000-4000-8000-0000000000c3", "/")
    with pytest.raises(PathNotFound, match="root /nowhere/at/all does not exist"):
        storage.mkdir(orphan, p("x"))


def test_delete_removes_a_file_through_a_delete_task(
    mock: responses.RequestsMock, sim: SimulatedGlobus, storage: GlobusStorage, source: Endpoint
) -> None:
    """The file is gone once delete returns; the delete task was not recursive."""
    sim.put(COLL_A, "/data/raw/old.h5", b"old")

    storage.delete(source, p("old.h5"))

    assert sim.read(COLL_A, "/data/raw/old.h5") is None
    (task,) = sim.tasks.values()
    assert task.kind == "DELETE"
    assert task.document["recursive"] is False
    assert task.document["DATA"] == [{"DATA_TYPE": "delete_item", "path": "/data/raw/old.h5"}]


def test_delete_of_a_folder_needs_recursive(sim: SimulatedGlobus, storage: GlobusStorage, source: Endpoint) -> None:
    """A folder is refused without recursive=True and removed with it."""
    sim.put(COLL_A, "/data/raw/scan/1.h5", b"1")
    sim.put(COLL_A, "/data/raw/scan/sub/2.h5", b"2")

    with pytest.raises(StorageError, match="is a folder; pass recursive=True"):
        storage.delete(source, p("scan"))
    assert not sim.tasks

    storage.delete(source, p("scan"), recursive=True)
    assert list(storage.list(source)) == []


def test_delete_of_a_missing_path_is_path_not_found(
    sim: SimulatedGlobus, storage: GlobusStorage, source: Endpoint
) -> None:
    """Nothing is submitted for a path that does not exist."""
    with pytest.raises(PathNotFound, match="nothing was deleted"):
        storage.delete(source, p("ghost.h5"))
    assert not sim.tasks


def test_delete_of_an_escaping_symlink_is_refused(
    sim: SimulatedGlobus, storage: GlobusStorage, source: Endpoint
) -> None:
    """A symlink whose target leaves the root is not deleted."""
    sim.symlink(COLL_A, "/data/raw/escape.h5", "/etc/shadow")
    with pytest.raises(PathEscapesRoot, match=r"escape\.h5 on spot832 resolves outside /data/raw"):
        storage.delete(source, p("escape.h5"))
    assert not sim.tasks


def test_a_failed_delete_task_raises(sim: SimulatedGlobus, storage: GlobusStorage, source: Endpoint) -> None:
    """A delete task that ends FAILED raises with its id and reason."""
    sim.put(COLL_A, "/data/raw/x.h5", b"x")
    sim.next_task_fails_with = "ENDPOINT_ERROR"

    with pytest.raises(StorageError, match=r"delete task \S+ FAILED: ENDPOINT_ERROR"):
        storage.delete(source, p("x.h5"))


def test_a_stuck_delete_task_is_cancelled(sim: SimulatedGlobus, storage: GlobusStorage, source: Endpoint) -> None:
    """A delete that keeps hitting PERMISSION_DENIED is cancelled and reported."""
    sim.put(COLL_A, "/data/raw/x.h5", b"x")
    sim.next_task_stalls_with = "PERMISSION_DENIED"

    with pytest.raises(StorageError, match=r"PERMISSION_DENIED.*cancelled"):
        storage.delete(source, p("x.h5"))
    assert len(sim.cancelled) == 1


def test_a_slow_delete_task_times_out(
    sim: SimulatedGlobus, storage: GlobusStorage, clock: FakeClock, source: Endpoint
) -> None:
    """A delete still running at its deadline is cancelled; the error is transient."""
    sim.put(COLL_A, "/data/raw/x.h5", b"x")
    sim.polls_until_done = 1000

    with pytest.raises(TransientStorageError, match="did not finish within 30 s"):
        storage.delete(source, p("x.h5"))
    assert clock.slept == 30
    assert len(sim.cancelled) == 1


def test_storage_errors_from_the_api_are_translated(
    mock: responses.RequestsMock, storage: GlobusStorage, source: Endpoint
) -> None:
    """Denied listings and unreachable endpoints become storage errors naming the path."""
    mock.add(
        "GET",
        f"{BASE}/operation/endpoint/{COLL_A}/ls",
        status=502,
        json={"code": "ExternalError.DirListingFailed.PermissionDenied", "message": "Path not allowed"},
    )
    mock.add(
        "GET",
        f"{BASE}/operation/endpoint/{COLL_A}/stat",
        status=502,
        json={"code": "ExternalError.DirListingFailed.GCDisconnected", "message": "endpoint is not connected"},
    )

    with pytest.raises(StorageError, match="listing /data/raw on spot832: permission denied"):
        list(storage.list(source))
    with pytest.raises(TransientStorageError, match="endpoint failed"):
        storage.stat(source, p("x.h5"))
    stat_calls = [c for c in mock.calls if "/stat" in (c.request.url or "")]
    assert len(stat_calls) == 1  # endpoint errors are not retried on the spot
