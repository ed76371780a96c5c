"""A tape library that is a local folder: each bundle is a tar file (like ``htar``).

Single-file bundles (``hsi cput``) are stored as plain copies at the bundle's name (the
planner names them after their member). Verification reads the tar index back and
compares member names and sizes with the receipt, the same check splash_core does against
HPSS with ``htar -tvf``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
from pathlib import Path
from typing import IO

import attrs

from splash_core.adapters.local._fs import checked_path
from splash_core.domain.errors import InvalidPath, TapeError
from splash_core.domain.models import ArchiveMethod, Endpoint, TapeBundle, TapeReceipt
from splash_core.domain.paths import RelPath
from splash_core.ports.tape import TapeArchivePort

log = logging.getLogger(__name__)


def _is_cput(receipt: TapeReceipt) -> bool:
    # a single-file bundle is named after its one member (see plan_bundles)
    return len(receipt.members) == 1 and receipt.members[0].path.value == receipt.bundle


class LocalTape(TapeArchivePort):
    """Bundles written under ``tape_root`` (a folder standing in for HPSS).

    Args:
        tape_root: the folder that plays the tape library; created if missing.
    """

    def __init__(self, tape_root: str | os.PathLike[str]) -> None:
        self._root = Path(tape_root)

    def _tape_file(self, bundle: str) -> Path:
        try:
            rel = RelPath.parse(bundle)
        except InvalidPath as exc:
            raise TapeError(f"tape bundle name {bundle!r} is not a valid relative name: {exc}") from exc
        return self._root / rel.value

    def archive(self, bundle: TapeBundle, source: Endpoint) -> TapeReceipt:
        """Write ``bundle`` to the tape folder atomically (temp name, fsync, rename).

        Raises:
            TapeError: no members, a member missing or not of its planned size, or a write error.
        """
        if not bundle.members:
            raise TapeError(f"tape bundle {bundle.name} has no members; nothing was written")
        if bundle.method is ArchiveMethod.HSI_CPUT and len(bundle.members) != 1:
            raise TapeError(f"tape bundle {bundle.name}: hsi cput takes exactly one member")
        sources = []
        for member in bundle.members:
            path = checked_path(source, member.path)
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                raise TapeError(
                    f"tape bundle {bundle.name}: member {member.path} is missing on {source.name}; re-plan the bundle"
                ) from None
            if size != member.size:
                raise TapeError(
                    f"tape bundle {bundle.name}: member {member.path} on {source.name} is {size} bytes, "
                    f"planned {member.size}; re-plan the bundle"
                )
            sources.append((member, path))
        target = self._tape_file(bundle.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.partial")
        try:
            if bundle.method is ArchiveMethod.HSI_CPUT:
                shutil.copyfile(sources[0][1], tmp)
            else:
                with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
                    for member, path in sources:
                        tar.add(path, arcname=member.path.value, recursive=False)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            tmp.replace(target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise TapeError(f"tape bundle {bundle.name}: writing {target} failed: {exc}") from exc
        log.info("archived %s (%d members) to %s", bundle.name, len(bundle.members), target)
        return TapeReceipt(bundle=bundle.name, tape_path=str(target), members=bundle.members)

    def _on_tape(self, receipt: TapeReceipt) -> dict[str, int]:
        target = self._tape_file(receipt.bundle)
        if not target.exists():
            raise TapeError(f"tape bundle {receipt.bundle} is not on tape at {target}")
        if _is_cput(receipt):
            return {receipt.members[0].path.value: target.stat().st_size}
        try:
            with tarfile.open(target, "r") as tar:
                return {m.name: m.size for m in tar.getmembers() if m.isfile()}
        except (tarfile.TarError, OSError) as exc:
            raise TapeError(f"tape bundle {receipt.bundle} at {target} cannot be read: {exc}") from exc

    def verify(self, receipt: TapeReceipt) -> TapeReceipt:
        """Compare the bundle's index (names and sizes) with the receipt.

        Raises:
            TapeError: a member is missing or of another size, naming it.
        """
        listed = self._on_tape(receipt)
        problems = []
        for member in receipt.members:
            size = listed.get(member.path.value)
            if size is None:
                problems.append(f"{member.path} is missing")
            elif size != member.size:
                problems.append(f"{member.path} is {size} bytes on tape, expected {member.size}")
        if problems:
            raise TapeError(f"tape bundle {receipt.bundle} failed verification: {'; '.join(problems[:5])}")
        return attrs.evolve(receipt, verified=True)

    def restore(self, receipt: TapeReceipt, members: tuple[RelPath, ...], destination: Endpoint) -> None:
        """Copy ``members`` back from tape to ``destination`` (same relative paths), each atomically.

        Raises:
            TapeError: a member not in the receipt (nothing restored), or a read/write error.
        """
        wanted = {m.value for m in members}
        unknown = sorted(wanted - {m.path.value for m in receipt.members})
        if unknown:
            raise TapeError(f"tape bundle {receipt.bundle} has no member(s) {', '.join(unknown[:5])}; nothing restored")
        target = self._tape_file(receipt.bundle)
        try:
            if _is_cput(receipt):
                self._write(destination, receipt.members[0].path, target)
                return
            with tarfile.open(target, "r") as tar:
                for name in sorted(wanted):
                    src = tar.extractfile(name)
                    if src is None:
                        raise TapeError(f"tape bundle {receipt.bundle}: member {name} is not a regular file")
                    with src:
                        self._write(destination, RelPath.parse(name), src)
        except (tarfile.TarError, OSError, KeyError) as exc:
            raise TapeError(f"restoring from tape bundle {receipt.bundle} failed: {exc}") from exc

    @staticmethod
    def _write(destination: Endpoint, path: RelPath, src: Path | IO[bytes]) -> None:
        dest = Path(checked_path(destination, path))
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.partial")
        if isinstance(src, Path):
            shutil.copyfile(src, tmp)
        else:
            with open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, 8 * 1024 * 1024)
        tmp.replace(dest)
