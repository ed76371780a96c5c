"""The contract every :class:`TapeArchivePort` adapter must meet.

Subclass :class:`TapeContract` once per adapter and implement :meth:`TapeContract.make_env` to
return a :class:`TapeEnv`: the port, a source and a destination endpoint, ways to put and read
files there, and ways to damage what is on tape (a member with another size, a member gone).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from pathlib import Path

import pytest

from splash_core.domain.errors import TapeError
from splash_core.domain.models import ArchiveMethod, Endpoint, FileRecord, TapeBundle, TapeReceipt
from splash_core.domain.paths import RelPath
from splash_core.ports.tape import TapeArchivePort

P = RelPath.parse
HOSTILE = (
    "P7/a b.h5",
    "P7/x'$(rm -rf ~)'.h5",
    "P7/back`tick`.h5",
    "P7/ünïcødé ☃.h5",
    "P7/-dash.h5",
    "P7/sub dir/$HOME;ls.h5",
)


class TapeEnv(abc.ABC):
    """One adapter's world, as the tape suite sees it."""

    source: Endpoint
    destination: Endpoint

    @property
    @abc.abstractmethod
    def port(self) -> TapeArchivePort:
        """The adapter under test."""

    @abc.abstractmethod
    def put(self, endpoint: Endpoint, path: str, data: bytes) -> FileRecord:
        """Make a file with ``data`` exist at ``path`` on ``endpoint``; its record (path, size)."""

    @abc.abstractmethod
    def read(self, endpoint: Endpoint, path: str | RelPath) -> bytes:
        """The bytes at ``path`` on ``endpoint``."""

    @abc.abstractmethod
    def exists(self, endpoint: Endpoint, path: str | RelPath) -> bool:
        """Whether a file is at ``path`` on ``endpoint``."""

    @abc.abstractmethod
    def damage(self, receipt: TapeReceipt, member: RelPath) -> None:
        """Make ``member`` of the bundle on tape one byte shorter."""

    @abc.abstractmethod
    def lose(self, receipt: TapeReceipt, member: RelPath) -> None:
        """Remove ``member`` from the bundle on tape."""

    def close(self) -> None:  # noqa: B027 - most environments have nothing to release
        """Release what the environment holds."""


def htar_bundle(records: list[FileRecord], name: str = "P7_2024-2.tar") -> TapeBundle:
    """An htar bundle of ``records`` for proposal P7, cycle 2024-2."""
    return TapeBundle(name, ArchiveMethod.HTAR, tuple(records), "P7", 2024, 2)


def cput_bundle(record: FileRecord) -> TapeBundle:
    """A single-file bundle, named after its member as the planner names them."""
    return TapeBundle(record.path.value, ArchiveMethod.HSI_CPUT, (record,), "P7", 2024, 2)


class TapeContract(abc.ABC):
    """Tests every tape adapter must pass."""

    @abc.abstractmethod
    def make_env(self, tmp_path: Path) -> TapeEnv:
        """A fresh environment for one test."""

    @pytest.fixture
    def env(self, tmp_path: Path) -> Iterator[TapeEnv]:
        """The environment, closed after the test."""
        env = self.make_env(tmp_path)
        yield env
        env.close()

    def test_archive_verify_restore_round_trip(self, env: TapeEnv) -> None:
        """A bundle goes to tape, verifies, and chosen members come back byte for byte."""
        records = [
            env.put(env.source, "P7/scan_001.tif", b"one" * 100),
            env.put(env.source, "P7/scan_002.tif", b"two" * 200),
            env.put(env.source, "P7/sub/meta.json", b'{"energy": 10}'),
        ]
        receipt = env.port.archive(htar_bundle(records), env.source)
        assert receipt.bundle == "P7_2024-2.tar"
        assert receipt.tape_path
        assert {(m.path, m.size) for m in receipt.members} == {(r.path, r.size) for r in records}
        verified = env.port.verify(receipt)
        assert verified.verified
        assert verified.members == receipt.members
        wanted = (records[1].path, records[2].path)
        env.port.restore(verified, wanted, env.destination)
        assert env.read(env.destination, "P7/scan_002.tif") == b"two" * 200
        assert env.read(env.destination, "P7/sub/meta.json") == b'{"energy": 10}'
        assert not env.exists(env.destination, "P7/scan_001.tif")

    def test_single_file_round_trip(self, env: TapeEnv) -> None:
        """A large file alone (hsi cput) goes to tape, verifies and comes back."""
        record = env.put(env.source, "P7/huge volume.h5", b"\x00\x01" * 4096)
        receipt = env.port.verify(env.port.archive(cput_bundle(record), env.source))
        assert receipt.verified
        env.port.restore(receipt, (record.path,), env.destination)
        assert env.read(env.destination, "P7/huge volume.h5") == b"\x00\x01" * 4096

    def test_hostile_names_round_trip(self, env: TapeEnv) -> None:
        """Names with spaces, quotes, $(...), backticks, unicode and leading dashes survive the trip."""
        records = [env.put(env.source, name, name.encode()) for name in HOSTILE]
        receipt = env.port.verify(env.port.archive(htar_bundle(records), env.source))
        env.port.restore(receipt, tuple(r.path for r in records), env.destination)
        for name in HOSTILE:
            assert env.read(env.destination, name) == name.encode()

    def test_restore_with_a_receipt_rebuilt_from_the_ledger(self, env: TapeEnv) -> None:
        """A receipt rebuilt from its bundle name, tape path and some members (no job id) restores."""
        records = [env.put(env.source, "P7/a.h5", b"aaa"), env.put(env.source, "P7/b.h5", b"bbbb")]
        written = env.port.verify(env.port.archive(htar_bundle(records), env.source))
        rebuilt = TapeReceipt(bundle=written.bundle, tape_path=written.tape_path, members=(records[1],), verified=True)
        env.port.restore(rebuilt, (records[1].path,), env.destination)
        assert env.read(env.destination, "P7/b.h5") == b"bbbb"
        assert not env.exists(env.destination, "P7/a.h5")

    def test_damaged_member_fails_verification(self, env: TapeEnv) -> None:
        """A member whose size on tape differs fails verification, naming it."""
        records = [env.put(env.source, "P7/a.h5", b"a" * 50), env.put(env.source, "P7/b.h5", b"b" * 60)]
        receipt = env.port.archive(htar_bundle(records), env.source)
        env.damage(receipt, records[1].path)
        with pytest.raises(TapeError, match=r"P7/b\.h5"):
            env.port.verify(receipt)

    def test_missing_member_fails_verification(self, env: TapeEnv) -> None:
        """A member gone from tape fails verification, naming it."""
        records = [env.put(env.source, "P7/a.h5", b"a" * 5), env.put(env.source, "P7/b.h5", b"b" * 6)]
        receipt = env.port.archive(htar_bundle(records), env.source)
        env.lose(receipt, records[0].path)
        with pytest.raises(TapeError, match=r"P7/a\.h5"):
            env.port.verify(receipt)

    def test_damaged_single_file_fails_verification(self, env: TapeEnv) -> None:
        """A single file whose size on tape differs fails verification."""
        record = env.put(env.source, "P7/big.h5", b"z" * 300)
        receipt = env.port.archive(cput_bundle(record), env.source)
        env.damage(receipt, record.path)
        with pytest.raises(TapeError):
            env.port.verify(receipt)

    def test_restore_of_a_member_not_in_the_bundle_is_refused(self, env: TapeEnv) -> None:
        """Asking for a path the bundle does not hold raises TapeError and restores nothing."""
        records = [env.put(env.source, "P7/a.h5", b"a")]
        receipt = env.port.verify(env.port.archive(htar_bundle(records), env.source))
        with pytest.raises(TapeError, match=r"P7/zzz\.h5"):
            env.port.restore(receipt, (records[0].path, P("P7/zzz.h5")), env.destination)
        assert not env.exists(env.destination, "P7/a.h5")

    def test_empty_bundle_is_refused(self, env: TapeEnv) -> None:
        """A bundle without members is refused."""
        with pytest.raises(TapeError):
            env.port.archive(htar_bundle([]), env.source)

    def test_missing_source_file_is_refused(self, env: TapeEnv) -> None:
        """A planned member missing on the source makes the archive fail, naming it."""
        present = env.put(env.source, "P7/here.h5", b"here")
        gone = FileRecord(P("P7/gone.h5"), 10)
        with pytest.raises(TapeError, match=r"P7/gone\.h5"):
            env.port.archive(htar_bundle([present, gone]), env.source)
