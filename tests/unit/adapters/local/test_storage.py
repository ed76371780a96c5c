"""Local storage: symlinks, escapes and odd names (the contract suite covers the rest)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from splash_core.adapters.local import LocalStorage
from splash_core.domain.errors import PathEscapesRoot, StorageError
from splash_core.domain.models import ChecksumAlgorithm, Endpoint, Site
from splash_core.domain.paths import RelPath

P = RelPath.parse


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The endpoint's root folder, with a folder of outside files beside it."""
    (tmp_path / "root").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("outside the root")
    return tmp_path / "root"


@pytest.fixture
def endpoint(root: Path) -> Endpoint:
    """An endpoint on ``root``."""
    return Endpoint("data733", "als", str(root), Site.ON_SITE)


def test_symlinked_files_inside_are_listed_and_symlinked_folders_are_not_followed(
    root: Path, endpoint: Endpoint
) -> None:
    """A link to a file in the root counts; links to folders (in or out) and out of the root do not."""
    (root / "a").mkdir()
    (root / "a" / "real.edf").write_bytes(b"12345")
    (root / "link.edf").symlink_to(root / "a" / "real.edf")
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "out").symlink_to(root.parent / "outside", target_is_directory=True)
    (root / "out.txt").symlink_to(root.parent / "outside" / "secret.txt")
    listed = {r.path.value: r.size for r in LocalStorage().list(endpoint)}
    assert listed == {"a/real.edf": 5, "link.edf": 5}


def test_a_symlink_escaping_the_root_is_refused_everywhere(root: Path, endpoint: Endpoint) -> None:
    """stat, checksum, list and delete refuse a link leading out; the outside file survives."""
    (root / "out.txt").symlink_to(root.parent / "outside" / "secret.txt")
    (root / "out").symlink_to(root.parent / "outside", target_is_directory=True)
    storage = LocalStorage()
    with pytest.raises(PathEscapesRoot, match=r"out\.txt"):
        storage.stat(endpoint, P("out.txt"))
    with pytest.raises(PathEscapesRoot):
        storage.checksum(endpoint, P("out/secret.txt"), ChecksumAlgorithm.BLAKE3)
    with pytest.raises(PathEscapesRoot):
        list(storage.list(endpoint, P("out")))
    with pytest.raises(PathEscapesRoot):
        storage.delete(endpoint, P("out.txt"))
    with pytest.raises(PathEscapesRoot):
        storage.delete(endpoint, P("out/secret.txt"))
    with pytest.raises(PathEscapesRoot):
        storage.mkdir(endpoint, P("out/new"))
    assert (root.parent / "outside" / "secret.txt").read_text() == "outside the root"
    assert os.path.islink(root / "out.txt")


def test_a_root_that_is_itself_a_symlink_works(tmp_path: Path) -> None:
    """Containment compares resolved paths, so a symlinked root is fine."""
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f.txt").write_text("x")
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    endpoint = Endpoint("e", "als", str(tmp_path / "alias"), Site.ON_SITE)
    storage = LocalStorage()
    assert storage.contains(endpoint, P("f.txt"))
    assert [r.path.value for r in storage.list(endpoint)] == ["f.txt"]
    storage.delete(endpoint, P("f.txt"))
    assert not (tmp_path / "real" / "f.txt").exists()


def test_delete_of_a_symlink_inside_removes_the_link_only(root: Path, endpoint: Endpoint) -> None:
    """Deleting a link leaves its target."""
    (root / "target.h5").write_bytes(b"keep")
    (root / "alias.h5").symlink_to(root / "target.h5")
    LocalStorage().delete(endpoint, P("alias.h5"))
    assert not os.path.lexists(root / "alias.h5")
    assert (root / "target.h5").read_bytes() == b"keep"


def test_recursive_delete_does_not_follow_links_out(root: Path, endpoint: Endpoint) -> None:
    """A folder holding a link to the outside is removed without touching the outside."""
    (root / "scan").mkdir()
    (root / "scan" / "f.tif").write_bytes(b"f")
    (root / "scan" / "out").symlink_to(root.parent / "outside", target_is_directory=True)
    LocalStorage().delete(endpoint, P("scan"), recursive=True)
    assert not (root / "scan").exists()
    assert (root.parent / "outside" / "secret.txt").exists()


def test_names_with_control_characters_are_skipped(root: Path, endpoint: Endpoint) -> None:
    """A file name no RelPath can hold is left out of listings instead of failing them."""
    (root / "good.txt").write_text("g")
    (root / "bad\nname.txt").write_text("b")
    assert [r.path.value for r in LocalStorage().list(endpoint)] == ["good.txt"]


def test_a_missing_root_is_an_error(tmp_path: Path) -> None:
    """Listing an endpoint whose root is absent (not mounted) raises instead of returning nothing."""
    endpoint = Endpoint("e", "als", str(tmp_path / "not-mounted"), Site.ON_SITE)
    with pytest.raises(StorageError, match="mounted"):
        list(LocalStorage().list(endpoint))


def test_checksum_of_a_folder_is_an_error(root: Path, endpoint: Endpoint) -> None:
    """Only files have checksums."""
    (root / "scan").mkdir()
    with pytest.raises(StorageError, match="folder"):
        LocalStorage().checksum(endpoint, P("scan"), ChecksumAlgorithm.MD5)


def test_mkdir_with_a_file_in_the_way(root: Path, endpoint: Endpoint) -> None:
    """A file where a folder should go is reported."""
    (root / "a").write_text("file")
    with pytest.raises(StorageError, match="in the way"):
        LocalStorage().mkdir(endpoint, P("a/b"))
