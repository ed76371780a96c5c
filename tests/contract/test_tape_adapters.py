"""The tape contract, run against the fake and against HpssArchive over a simulated SFAPI and HPSS."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import stamina

from splash_core.adapters.sfapi import HpssArchive, HpssSettings, SfapiJobs
from splash_core.adapters.sfapi.hpss import is_cput
from splash_core.domain.models import Endpoint, FileRecord, Site, TapeReceipt
from splash_core.domain.paths import RelPath
from splash_core.ports.tape import TapeArchivePort
from tests.contract.tape_contract import TapeContract, TapeEnv
from tests.fakes import FakeClock, FakeStorage, FakeTape
from tests.unit.adapters.sfapi.simulated import SimulatedSfapi


class FakeTapeEnv(TapeEnv):
    """The in-memory tape over FakeStorage."""

    def __init__(self) -> None:
        self.storage = FakeStorage(FakeClock())
        self.tape = FakeTape(self.storage)
        self.source = Endpoint("nersc733_alsdev_raw", "nersc", "/global/cfs/cdirs/als/7.3.3/raw", Site.OFF_SITE)
        self.destination = Endpoint("restore", "nersc", "/global/cfs/cdirs/als/7.3.3/restore", Site.OFF_SITE)

    @property
    def port(self) -> TapeArchivePort:
        return self.tape

    def put(self, endpoint: Endpoint, path: str, data: bytes) -> FileRecord:
        return FileRecord(self.storage.put(endpoint, path, data), len(data))

    def read(self, endpoint: Endpoint, path: str | RelPath) -> bytes:
        return self.storage.read(endpoint, path)

    def exists(self, endpoint: Endpoint, path: str | RelPath) -> bool:
        return self.storage.exists(endpoint, path)

    def damage(self, receipt: TapeReceipt, member: RelPath) -> None:
        stored = self.tape.bundles[receipt.bundle]
        stored[member] = stored[member][:-1]

    def lose(self, receipt: TapeReceipt, member: RelPath) -> None:
        self.tape.lose_member(receipt.bundle, member)


class HpssTapeEnv(TapeEnv):
    """HpssArchive through SfapiJobs against the simulated SFAPI: the transfer scripts really run
    (bash, with stand-in ``hsi`` and ``htar`` keeping "HPSS" in a folder)."""

    def __init__(self, tmp_path: Path) -> None:
        self._testing = stamina.set_testing(True, attempts=3)
        self.sim = SimulatedSfapi(tmp_path)
        self.jobs = SfapiJobs(
            self.sim.settings(), self.sim.credentials(), client_factory=self.sim.client_factory, clock=FakeClock()
        )
        self.archive = HpssArchive(self.jobs, HpssSettings(tape_root=str(tmp_path / "hpss")))
        self.source = Endpoint("nersc733_alsdev_raw", "nersc", str(tmp_path / "cfs" / "raw"), Site.OFF_SITE)
        self.destination = Endpoint("restore", "nersc", str(tmp_path / "cfs" / "restore"), Site.OFF_SITE)
        Path(self.source.root_path).mkdir(parents=True)

    @property
    def port(self) -> TapeArchivePort:
        return self.archive

    def _path(self, endpoint: Endpoint, path: str | RelPath) -> Path:
        return Path(endpoint.root_path) / (path.value if isinstance(path, RelPath) else path)

    def put(self, endpoint: Endpoint, path: str, data: bytes) -> FileRecord:
        target = self._path(endpoint, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return FileRecord(RelPath.parse(path), len(data))

    def read(self, endpoint: Endpoint, path: str | RelPath) -> bytes:
        return self._path(endpoint, path).read_bytes()

    def exists(self, endpoint: Endpoint, path: str | RelPath) -> bool:
        return self._path(endpoint, path).is_file()

    def damage(self, receipt: TapeReceipt, member: RelPath) -> None:
        if is_cput(receipt):
            tape = Path(receipt.tape_path)
            tape.write_bytes(tape.read_bytes()[:-1])
            return
        _rewrite(Path(receipt.tape_path), lambda name, data: data[:-1] if name == member.value else data)

    def lose(self, receipt: TapeReceipt, member: RelPath) -> None:
        if is_cput(receipt):
            Path(receipt.tape_path).unlink()
            return
        _rewrite(Path(receipt.tape_path), lambda name, data: None if name == member.value else data)

    def close(self) -> None:
        self.jobs.close()
        self._testing.__exit__(None, None, None)


def _rewrite(path: Path, change: Callable[[str, bytes], bytes | None]) -> None:
    with tarfile.open(path) as tar:
        items = []
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            if handle is not None:
                items.append((member, handle.read()))
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for member, data in items:
            new = change(member.name, data)
            if new is not None:
                member.size = len(new)
                tar.addfile(member, io.BytesIO(new))


class TestFakeTape(TapeContract):
    """The fake honours the tape contract."""

    def make_env(self, tmp_path: Path) -> TapeEnv:
        return FakeTapeEnv()


class TestHpssArchive(TapeContract):
    """The HPSS adapter honours the tape contract (simulated SFAPI, Slurm and HPSS)."""

    def make_env(self, tmp_path: Path) -> TapeEnv:
        return HpssTapeEnv(tmp_path)


class LocalTapeEnv(TapeEnv):
    """LocalTape: bundles are tar files (single files plain copies) in a folder."""

    def __init__(self, tmp_path: Path) -> None:
        from splash_core.adapters.local.tape import LocalTape

        self.source = Endpoint("nersc733_alsdev_raw", "nersc", str(tmp_path / "cfs"), Site.OFF_SITE)
        self.destination = Endpoint("restore", "nersc", str(tmp_path / "restore"), Site.OFF_SITE)
        for endpoint in (self.source, self.destination):
            Path(endpoint.root_path).mkdir()
        self.tape_root = tmp_path / "tape"
        self.tape = LocalTape(self.tape_root)

    @property
    def port(self) -> TapeArchivePort:
        return self.tape

    def put(self, endpoint: Endpoint, path: str, data: bytes) -> FileRecord:
        target = Path(endpoint.full_path(RelPath.parse(path)))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return FileRecord(RelPath.parse(path), len(data))

    def read(self, endpoint: Endpoint, path: str | RelPath) -> bytes:
        return Path(endpoint.full_path(RelPath.parse(str(path)))).read_bytes()

    def exists(self, endpoint: Endpoint, path: str | RelPath) -> bool:
        return Path(endpoint.full_path(RelPath.parse(str(path)))).is_file()

    def _rewrite(self, receipt: TapeReceipt, change: Callable[[str, bytes], bytes | None]) -> None:
        target = Path(receipt.tape_path)
        if len(receipt.members) == 1 and receipt.members[0].path.value == receipt.bundle:
            data = change(receipt.bundle, target.read_bytes())
            target.write_bytes(data or b"")
            return
        with tarfile.open(target) as tar:
            entries = [(m, tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()]  # type: ignore[union-attr]
        with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
            for info, data in entries:
                new = change(info.name, data)
                if new is None:
                    continue
                info.size = len(new)
                tar.addfile(info, io.BytesIO(new))

    def damage(self, receipt: TapeReceipt, member: RelPath) -> None:
        self._rewrite(receipt, lambda name, data: data[:-1] if name == member.value else data)

    def lose(self, receipt: TapeReceipt, member: RelPath) -> None:
        self._rewrite(receipt, lambda name, data: None if name == member.value else data)


class TestLocalTape(TapeContract):
    """The contract against the local tape folder."""

    def make_env(self, tmp_path: Path) -> TapeEnv:
        return LocalTapeEnv(tmp_path)
