"""A tape library that is a local folder: each bundle is a tar file (like ``htar``).

Single-file bundles (``hsi cput``) are stored as plain copies. Verification reads
the tar index back and compares member names and sizes with the receipt, the
same check splash_core does against HPSS with ``htar -tvf``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
from pathlib import Path

import attrs

from splash_core.adapters.local._fs import checked_path
from splash_core.domain.errors import TapeError
from splash_core.domain.models import ArchiveMethod, Endpoint, TapeBundle, TapeReceipt
from splash_core.domain.paths import RelPath
from splash_core.ports.tape import TapeArchivePort

log = logging.getLogger(__name__)


class LocalTape(TapeArchivePort):
    """Bundles written under ``tape_root`` (a folder standing in for HPSS).

    Args:
        tape_root: the folder that plays the tape library; created if missing.
    """

    def __init__(self, tape_root: str | os.PathLike[str]) -> None:
        self._root = Path(tape_root)

    def _tape_file(self, bundle: str) -> Path:
        if "/" in bundle or bundle in ("", ".", ".."):
            raise TapeError(f"tape bundle name {bundle!r} is not a plain file name")
        return self._root / bundle

    def archive(self, bundle: TapeBundle, source: Endpoint) -> TapeReceipt:
        """Write ``bundle`` to the tape folder atomically (temp name, fsync, rename)."""
        if not bundle.members:
            raise TapeError(f"tape bundle {bundle.name} has no members; nothing was written")
        self._root.mkdir(parents=True, exist_ok=True)
        target = self._tape_file(bundle.name)
        tmp = target.with_name(f".{target.name}.partial")
        try:
            if bundle.method is ArchiveMethod.HSI_CPUT:
                if len(bundle.members) != 1:
                    raise TapeError(f"tape bundle {bundle.name}: hsi cput takes exactly one member")
                shutil.copyfile(checked_path(source, bundle.members[0].path), tmp)
            else:
                with tarfile.open(tmp, "w") as tar:
                    for member in bundle.members:
                        tar.add(checked_path(source, member.path), arcname=member.path.value, recursive=False)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            tmp.replace(target)
        except FileNotFoundError as exc:
            tmp.unlink(missing_ok=True)
            raise TapeError(
                f"tape bundle {bundle.name}: a member is missing on {source.name} ({exc.filename}); re-plan it"
            ) from exc
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise TapeError(f"tape bundle {bundle.name}: writing {target} failed: {exc}") from exc
        log.info("archived %s (%d members) to %s", bundle.name, len(bundle.members), target)
        return TapeReceipt(bundle=bundle.name, tape_path=str(target), members=bundle.members)

    def _on_tape(self, receipt: TapeReceipt) -> dict[str, int]:
        target = self._tape_file(receipt.bundle)
        if not target.exists():
            raise TapeError(f"tape bundle {receipt.bundle} is not on tape at {target}")
        if not tarfile.is_tarfile(target):
            if len(receipt.members) != 1:
                raise TapeError(f"tape bundle {receipt.bundle} at {target} is not a readable tar index")
            return {receipt.members[0].path.value: target.stat().st_size}
        try:
            with tarfile.open(target, "r") as tar:
                return {m.name: m.size for m in tar.getmembers() if m.isfile()}
        except (tarfile.TarError, OSError) as exc:
            raise TapeError(f"tape bundle {receipt.bundle} at {target} cannot be read: {exc}") from exc

    def verify(self, receipt: TapeReceipt) -> TapeReceipt:
        """Compare the bundle's index (names and sizes) with the receipt."""
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
        """Copy ``members`` back from tape to ``destination`` (same relative paths)."""
        target = self._tape_file(receipt.bundle)
        wanted = {m.value for m in members}
        known = {m.path.value for m in receipt.members}
        unknown = sorted(wanted - known)
        if unknown:
            raise TapeError(f"tape bundle {receipt.bundle} has no member(s) {', '.join(unknown[:5])}")
        try:
            if not tarfile.is_tarfile(target):
                (only,) = receipt.members
                dest = Path(checked_path(destination, only.path))
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(target, dest)
                return
            with tarfile.open(target, "r") as tar:
                for name in sorted(wanted):
                    dest = Path(checked_path(destination, RelPath.parse(name)))
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    src = tar.extractfile(name)
                    if src is None:
                        raise TapeError(f"tape bundle {receipt.bundle}: member {name} is not a file")
                    tmp = dest.with_name(f".{dest.name}.partial")
                    with src, open(tmp, "wb") as out:
                        shutil.copyfileobj(src, out, 8 * 1024 * 1024)
                    tmp.replace(dest)
        except (tarfile.TarError, OSError, KeyError) as exc:
            raise TapeError(f"restoring from tape bundle {receipt.bundle} failed: {exc}") from exc
