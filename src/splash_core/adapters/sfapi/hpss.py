"""The NERSC HPSS tape archive through SFAPI batch jobs on the transfer queue.

:class:`HpssArchive` implements :class:`TapeArchivePort` with one Slurm job per step, on the
same machinery as :class:`~splash_core.adapters.sfapi.jobs.SfapiJobs` (submit, status with the
not-found grace window, exit codes, log tails):

- archive: an ``htar`` bundle is written with ``htar -cvf <tape file> -L <member list>``; a
  single large file with ``hsi cput``. Before anything goes to tape, the job checks every
  member is a regular file of the planned size.
- verify: a job prints ``htar -tvf`` (or ``hsi ls -l`` and ``hsi hashlist``) between markers;
  the listing is read back from the job's log and compared with the receipt (names, sizes and,
  for ``hsi cput`` files with an MD5 checksum, the MD5 HPSS stored).
- restore: ``htar -xvf <tape file> -L <member list>`` into the destination root, or ``hsi get``
  into a staging folder next to the destination and a rename; then every restored file's size
  is checked.

File names never pass through a shell unquoted: member lists travel inside the script as
base64 (decoded into a private temporary file) and every other value is ``shlex.quote``-d.
HSI parses its own command line (spaces separate, ``* ? [ ] { } ^`` are wildcards, only
printable ASCII is allowed), so HPSS paths are built from plain characters only (anything else
is replaced and a short hash added), and local files reach ``hsi`` under fixed plain names (a
symlink for ``cput``, a staging file for ``get``). Names with line breaks or with leading or
trailing white space cannot be written to an ``htar`` member list and are refused.

Which method a receipt was written with is read from it: a receipt whose only member's path
is the bundle name is an ``hsi cput`` file (the planner names single-file bundles after the
file), anything else an ``htar`` archive.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import posixpath
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

import attrs

from splash_core.adapters.sfapi.jobs import SfapiJobs
from splash_core.adapters.sfapi.settings import HpssSettings
from splash_core.adapters.sfapi.templates import BatchHeader, ScriptTemplate, job_name, q
from splash_core.domain.errors import (
    InvalidPath,
    JobError,
    TapeError,
    TransientError,
    TransientTapeError,
)
from splash_core.domain.models import (
    ArchiveMethod,
    ChecksumAlgorithm,
    Endpoint,
    FileRecord,
    JobStatus,
    TapeBundle,
    TapeReceipt,
)
from splash_core.domain.paths import RelPath
from splash_core.ports.tape import TapeArchivePort

logger = logging.getLogger(__name__)

LISTING_BEGIN = "SPLASH-LISTING-BEGIN"
LISTING_END = "SPLASH-LISTING-END"
HASH_BEGIN = "SPLASH-HASH-BEGIN"
HASH_END = "SPLASH-HASH-END"
_LIST_END = "SPLASH_END_OF_LIST"  # base64 never contains '_', so it cannot end the here-document early

_HSI_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_HSI_PATH = re.compile(r"^/[A-Za-z0-9_./+-]+$")
_HSI_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._+-]+")
_MAX_COMPONENT = 200
_HTAR_LINE = re.compile(
    r"^HTAR:\s+(?P<mode>[-dlcbps][-rwxsStTl]{9}\S*)\s+(?P<owner>\S+)\s+(?P<size>\d+)\s+"
    r"(?P<date>\d{4}-\d{2}-\d{2})\s+(?P<time>\d{2}:\d{2}(?::\d{2})?)\s+(?P<name>.+)$"
)
_PERMS = re.compile(r"^[-dlcbps][-rwxsStT]{9}")
_MONTHS = frozenset({"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"})
_MD5 = re.compile(r"\b([0-9a-fA-F]{32})\b")
_OCTAL = re.compile(r"\\([0-7]{3})")


def hpss_component(part: str) -> str:
    """``part`` as a name HSI takes literally: kept when plain, else cleaned and given a short hash."""
    if _HSI_SAFE.match(part) and len(part) <= _MAX_COMPONENT and part not in (".", ".."):
        return part
    digest = hashlib.sha256(part.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    stem, dot, ext = part.rpartition(".")
    if not dot or not stem or not re.fullmatch(r"[A-Za-z0-9]{1,10}", ext):
        stem, ext = part, ""
    clean = _HSI_UNSAFE_RUN.sub("_", stem).strip("._+-")[: _MAX_COMPONENT - 20] or "file"
    return f"{clean}-{digest}" + (f".{ext}" if ext else "")


def is_cput(receipt: TapeReceipt) -> bool:
    """Whether ``receipt`` is an ``hsi cput`` file (its only member is named as the bundle)."""
    paths = {m.path.value for m in receipt.members}
    return paths == {receipt.bundle}


def _b64_lines(lines: Iterable[str]) -> str:
    data = "".join(f"{line}\n" for line in lines).encode("utf-8", "surrogateescape")
    return base64.encodebytes(data).decode("ascii").rstrip("\n") if data else ""


def _heredoc_b64(target: str, lines: Sequence[str]) -> str:
    body = _b64_lines(lines)
    return f"base64 -d > {target} <<'{_LIST_END}'\n{body}\n{_LIST_END}"


def _section(log: str, begin: str, end: str) -> str | None:
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == begin]
    if not starts:
        return None
    start = starts[-1] + 1
    for j in range(start, len(lines)):
        if lines[j].strip() == end:
            return "\n".join(lines[start:j])
    return None


def _unescape(name: str) -> str:
    if "\\" not in name:
        return name
    raw = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), name).encode("latin-1", "surrogateescape")
    return raw.decode("utf-8", "surrogateescape")


def parse_htar_listing(text: str) -> dict[str, int]:
    """Regular files and their sizes in ``htar -tvf`` output (``HTAR: -rw-r--r-- u/g 12 2024-01-01 10:00 name``)."""
    files: dict[str, int] = {}
    for line in text.splitlines():
        match = _HTAR_LINE.match(line.rstrip("\r"))
        if match is None or match.group("mode")[0] != "-":
            continue
        name = match.group("name")
        files[name] = int(match.group("size"))
        unescaped = _unescape(name)
        if unescaped != name:
            files.setdefault(unescaped, int(match.group("size")))
    return files


def parse_hsi_ls(text: str, tape_file: str) -> int | None:
    """The size of ``tape_file`` in ``hsi ls -l`` output, or None when it is not listed."""
    base = posixpath.basename(tape_file)
    for line in text.splitlines():
        tokens = line.split()
        if not tokens or not _PERMS.match(tokens[0]) or not line.rstrip().endswith(base):
            continue
        for i in range(1, len(tokens) - 1):
            if tokens[i].isdigit() and tokens[i + 1].lower()[:3] in _MONTHS:
                return int(tokens[i])
    return None


def parse_hsi_md5(text: str, tape_file: str) -> str | None:
    """The MD5 that ``hsi hashlist`` reports for ``tape_file``, or None."""
    base = posixpath.basename(tape_file)
    for line in text.splitlines():
        if base in line and "md5" in line.lower():
            match = _MD5.search(line)
            if match:
                return match.group(1).lower()
    return None


def _tape_file(receipt: TapeReceipt) -> str:
    """The receipt's tape path, when HSI would read it literally (it is built that way here)."""
    path = receipt.tape_path
    if not _HSI_PATH.match(path) or posixpath.normpath(path) != path or "/../" in f"{path}/":
        raise TapeError(
            f"tape bundle {receipt.bundle}: tape path {path!r} is not a plain absolute HPSS path (letters, digits "
            f"and _ . / + - only); it was not written by this adapter - nothing was done"
        )
    return path


def _refuse_member(bundle: str, path: RelPath, why: str) -> TapeError:
    return TapeError(f"tape bundle {bundle}: member {path.value!r} {why}; nothing was written to tape")


def _check_list_member(bundle: str, path: RelPath) -> str:
    value = path.value
    if any(ch in value for ch in "\n\r") or any(unicodedata.category(ch) == "Cc" for ch in value):
        raise _refuse_member(
            bundle, path, "has a line break or control character, which an htar member list cannot hold"
        )
    if value != value.strip():
        raise _refuse_member(bundle, path, "starts or ends with white space, which an htar member list would lose")
    return value


_HTAR_ARCHIVE = ScriptTemplate(
    """@@{header}
# Rendered by splash_core (SFAPI adapter): write tape bundle @@{bundle} with htar.
set -euo pipefail
echo "[splash] job ${SLURM_JOB_ID:-unknown}: htar archive started at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
SOURCE_ROOT=@@{source_root}
TAPE_DIR=@@{tape_dir}
TAPE_FILE=@@{tape_file}
WORK="$(mktemp -d "${TMPDIR:-/tmp}/splash-hpss.XXXXXX")"
trap 'rm -f -- "${WORK}/members" "${WORK}/expected"; rmdir -- "${WORK}" 2>/dev/null || true' EXIT
@@{members}
@@{expected}
cd -- "${SOURCE_ROOT}"
bad=0
while IFS=$'\\t' read -r size path; do
    if [ ! -f "${path}" ] || [ -L "${path}" ]; then
        echo "[splash] member is missing or not a regular file: ${path}" >&2
        bad=1
        continue
    fi
    actual="$(stat -c %s -- "${path}")"
    if [ "${actual}" != "${size}" ]; then
        echo "[splash] member ${path} is ${actual} bytes, planned ${size}" >&2
        bad=1
    fi
done < "${WORK}/expected"
if [ "${bad}" -ne 0 ]; then
    echo "[splash] the bundle does not match its plan; nothing was written to tape" >&2
    exit 3
fi
hsi -q @@{mkdir}
htar -cvf "${TAPE_FILE}" -L "${WORK}/members"
echo "[splash] htar wrote ${TAPE_FILE}"
"""
)

_CPUT_ARCHIVE = ScriptTemplate(
    """@@{header}
# Rendered by splash_core (SFAPI adapter): write tape bundle @@{bundle} with hsi cput.
set -euo pipefail
echo "[splash] job ${SLURM_JOB_ID:-unknown}: hsi cput started at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
SOURCE_FILE=@@{source_file}
EXPECTED_SIZE=@@{size}
if [ ! -f "${SOURCE_FILE}" ] || [ -L "${SOURCE_FILE}" ]; then
    echo "[splash] the file is missing or not a regular file: ${SOURCE_FILE}" >&2
    exit 3
fi
actual="$(stat -c %s -- "${SOURCE_FILE}")"
if [ "${actual}" != "${EXPECTED_SIZE}" ]; then
    echo "[splash] ${SOURCE_FILE} is ${actual} bytes, planned ${EXPECTED_SIZE}; nothing was written to tape" >&2
    exit 3
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/splash-hpss.XXXXXX")"
trap 'rm -f -- "${WORK}/member"; rmdir -- "${WORK}" 2>/dev/null || true' EXIT
# hsi parses file names itself, so the file reaches it under a plain name
ln -s -- "${SOURCE_FILE}" "${WORK}/member"
cd -- "${WORK}"
hsi -q @@{mkdir}
hsi -q @@{cput}
echo "[splash] hsi cput wrote "@@{tape_file}
"""
)

_HTAR_VERIFY = ScriptTemplate(
    """@@{header}
# Rendered by splash_core (SFAPI adapter): list tape bundle @@{bundle} for verification.
set -euo pipefail
TAPE_FILE=@@{tape_file}
echo @@{begin}
htar -tvf "${TAPE_FILE}"
echo @@{end}
"""
)

_CPUT_VERIFY = ScriptTemplate(
    """@@{header}
# Rendered by splash_core (SFAPI adapter): list tape file @@{bundle} for verification.
set -euo pipefail
echo @@{begin}
hsi -q @@{ls} 2>&1
echo @@{end}
@@{hash}
"""
)

_HTAR_RESTORE = ScriptTemplate(
    """@@{header}
# Rendered by splash_core (SFAPI adapter): restore members of tape bundle @@{bundle} with htar.
set -euo pipefail
echo "[splash] job ${SLURM_JOB_ID:-unknown}: htar restore started at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
DEST_ROOT=@@{dest_root}
TAPE_FILE=@@{tape_file}
WORK="$(mktemp -d "${TMPDIR:-/tmp}/splash-hpss.XXXXXX")"
trap 'rm -f -- "${WORK}/members" "${WORK}/expected"; rmdir -- "${WORK}" 2>/dev/null || true' EXIT
@@{members}
@@{expected}
mkdir -p -- "${DEST_ROOT}"
cd -- "${DEST_ROOT}"
htar -xvf "${TAPE_FILE}" -L "${WORK}/members"
bad=0
while IFS=$'\\t' read -r size path; do
    if [ ! -f "${path}" ]; then
        echo "[splash] not restored: ${path}" >&2
        bad=1
        continue
    fi
    actual="$(stat -c %s -- "${path}")"
    if [ "${actual}" != "${size}" ]; then
        echo "[splash] restored ${path} is ${actual} bytes, expected ${size}" >&2
        bad=1
    fi
done < "${WORK}/expected"
if [ "${bad}" -ne 0 ]; then
    exit 4
fi
echo "[splash] restored every member"
"""
)

_CPUT_RESTORE = ScriptTemplate(
    """@@{header}
# Rendered by splash_core (SFAPI adapter): restore tape file @@{bundle} with hsi get.
set -euo pipefail
echo "[splash] job ${SLURM_JOB_ID:-unknown}: hsi get started at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
DEST_FILE=@@{dest_file}
EXPECTED_SIZE=@@{size}
DEST_DIR="$(dirname -- "${DEST_FILE}")"
mkdir -p -- "${DEST_DIR}"
STAGE="$(mktemp -d "${DEST_DIR}/.splash-restore.XXXXXX")"
trap 'rm -f -- "${STAGE}/member"; rmdir -- "${STAGE}" 2>/dev/null || true' EXIT
cd -- "${STAGE}"
hsi -q @@{get}
actual="$(stat -c %s -- "${STAGE}/member")"
if [ "${actual}" != "${EXPECTED_SIZE}" ]; then
    echo "[splash] restored file is ${actual} bytes, expected ${EXPECTED_SIZE}; not moved into place" >&2
    exit 4
fi
mv -f -- "${STAGE}/member" "${DEST_FILE}"
echo "[splash] restored "@@{dest_file}
"""
)


@attrs.frozen
class HpssJob:
    """A rendered transfer job: its Slurm name, its script and the tape path it works on."""

    job_name: str
    script: str
    tape_path: str


class HpssArchive(TapeArchivePort):
    """HPSS through SFAPI jobs (``htar`` bundles and ``hsi cput`` files).

    Args:
        jobs: the SFAPI jobs port that submits and watches the transfer jobs (its machine is
            the one jobs run on - Perlmutter's ``xfer`` QOS by default).
        settings: tape root and layout, transfer QOS and limits.
    """

    def __init__(self, jobs: SfapiJobs, settings: HpssSettings) -> None:
        self._jobs = jobs
        self._settings = settings

    def __repr__(self) -> str:
        return f"HpssArchive(tape_root={self._settings.tape_root}, machine={self._jobs.settings.machine})"

    @property
    def settings(self) -> HpssSettings:
        """The settings this archive runs with."""
        return self._settings

    # --- TapeArchivePort ---------------------------------------------------------

    def tape_path(self, bundle: TapeBundle, source: Endpoint) -> str:
        """Where ``bundle`` goes on HPSS (deterministic; every component plain, see :func:`hpss_component`)."""
        s = self._settings
        fields = {
            "endpoint": source.name,
            "facility": source.facility,
            "proposal": bundle.proposal,
            "year": bundle.year,
            "cycle": bundle.cycle,
        }
        if bundle.method is ArchiveMethod.HSI_CPUT:
            folder = s.cput_layout.format(**fields)
            try:
                names = list(RelPath.parse(bundle.name).parts)
            except InvalidPath:
                names = [bundle.name]
        else:
            folder = s.layout.format(**fields)
            name = hpss_component(bundle.name)
            names = [name if name.endswith(".tar") else f"{name}.tar"]
        parts = [hpss_component(p) for p in folder.split("/") if p] + [hpss_component(n) for n in names]
        return posixpath.join(s.tape_root, *parts)

    def archive(self, bundle: TapeBundle, source: Endpoint) -> TapeReceipt:
        """Write ``bundle`` (members relative to ``source``) to HPSS.

        Raises:
            TapeError: the bundle is empty or has a name an htar list cannot hold, the members
                did not match the plan, or the job failed (the message names bundle and job).
            TransientTapeError: the SFAPI was unavailable; nothing was submitted, retry later.
        """
        job = self.plan_archive(bundle, source)
        what = f"writing tape bundle {bundle.name} from {source.name} to {job.tape_path}"
        job_id, _ = self._run(job, what)
        logger.info(
            "tape bundle %s (%d members) written to %s by job %s",
            bundle.name,
            len(bundle.members),
            job.tape_path,
            job_id,
        )
        return TapeReceipt(bundle=bundle.name, tape_path=job.tape_path, members=bundle.members, job_id=job_id)

    def verify(self, receipt: TapeReceipt) -> TapeReceipt:
        """Read back what HPSS holds for ``receipt`` and compare names and sizes (and MD5 where known).

        Raises:
            TapeError: the bundle is missing, a member is missing or differs, or the listing
                could not be read.
        """
        job = self.plan_verify(receipt)
        what = f"verifying tape bundle {receipt.bundle} at {receipt.tape_path}"
        job_id, _ = self._run(job, what)
        log = self._read_log(job_id, what)
        listing = _section(log, LISTING_BEGIN, LISTING_END)
        if listing is None:
            raise TapeError(f"{what}: job {job_id} printed no listing; see its log {self._jobs.log_path(job_id)}")
        if is_cput(receipt):
            problems = self._cput_problems(receipt, listing, log)
        else:
            problems = self._htar_problems(receipt, listing)
        if problems:
            shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
            raise TapeError(f"{what} (job {job_id}): {shown}; the bundle is not verified - archive it again")
        logger.info("tape bundle %s at %s verified by job %s", receipt.bundle, receipt.tape_path, job_id)
        return attrs.evolve(receipt, verified=True)

    def restore(self, receipt: TapeReceipt, members: tuple[RelPath, ...], destination: Endpoint) -> None:
        """Copy ``members`` of the bundle back from HPSS into ``destination`` (same relative paths).

        Raises:
            TapeError: a member is not in the receipt, or the job failed, or a restored file has
                the wrong size (the message names bundle and job).
        """
        if not members:
            return
        job = self.plan_restore(receipt, members, destination)
        what = f"restoring {len(set(members))} member(s) of tape bundle {receipt.bundle} to {destination.name}"
        job_id, _ = self._run(job, what)
        logger.info(
            "restored %d member(s) of %s to %s by job %s", len(set(members)), receipt.bundle, destination.name, job_id
        )

    # --- the scripts -----------------------------------------------------------------

    def plan_archive(self, bundle: TapeBundle, source: Endpoint) -> HpssJob:
        """The job that writes ``bundle`` (nothing is submitted).

        Raises:
            TapeError: the bundle is empty, a cput bundle has more than one member, or a member
                name cannot go into an htar member list.
        """
        if not bundle.members:
            raise TapeError(f"tape bundle {bundle.name} has no members; nothing was written")
        tape_file = self.tape_path(bundle, source)
        tape_dir = posixpath.dirname(tape_file)
        header = self._header(f"hpss-archive-{bundle.name}")
        if bundle.method is ArchiveMethod.HSI_CPUT:
            if len(bundle.members) != 1:
                raise TapeError(
                    f"tape bundle {bundle.name}: hsi cput takes exactly one member, got {len(bundle.members)}"
                )
            (member,) = bundle.members
            cput = "cput -c on" if self._settings.checksum else "cput"
            script = _CPUT_ARCHIVE.substitute(
                header=header.render(),
                bundle=q(hpss_component(bundle.name)),
                source_file=q(source.full_path(member.path)),
                size=q(str(member.size)),
                mkdir=q(f"mkdir -p {tape_dir}"),
                cput=q(f"{cput} member : {tape_file}"),
                tape_file=q(tape_file),
            )
        else:
            names = [_check_list_member(bundle.name, m.path) for m in bundle.members]
            sizes = [f"{m.size}\t{n}" for m, n in zip(bundle.members, names, strict=True)]
            script = _HTAR_ARCHIVE.substitute(
                header=header.render(),
                bundle=q(hpss_component(bundle.name)),
                source_root=q(source.root_path),
                tape_dir=q(tape_dir),
                tape_file=q(tape_file),
                members=_heredoc_b64('"${WORK}/members"', names),
                expected=_heredoc_b64('"${WORK}/expected"', sizes),
                mkdir=q(f"mkdir -p {tape_dir}"),
            )
        return HpssJob(header.job_name, script, tape_file)

    def plan_verify(self, receipt: TapeReceipt) -> HpssJob:
        """The job that lists what HPSS holds for ``receipt`` (nothing is submitted).

        Raises:
            TapeError: the receipt's tape path is not one HSI would read literally.
        """
        tape_file = _tape_file(receipt)
        header = self._header(f"hpss-verify-{receipt.bundle}")
        if is_cput(receipt):
            hash_part = ""
            if self._settings.checksum:
                hashlist = q(f"hashlist {tape_file}")
                hash_part = f"echo {HASH_BEGIN}\nhsi -q {hashlist} 2>&1 || true\necho {HASH_END}"
            script = _CPUT_VERIFY.substitute(
                header=header.render(),
                bundle=q(hpss_component(receipt.bundle)),
                begin=LISTING_BEGIN,
                end=LISTING_END,
                ls=q(f"ls -l {tape_file}"),
                hash=hash_part,
            )
        else:
            script = _HTAR_VERIFY.substitute(
                header=header.render(),
                bundle=q(hpss_component(receipt.bundle)),
                tape_file=q(tape_file),
                begin=LISTING_BEGIN,
                end=LISTING_END,
            )
        return HpssJob(header.job_name, script, tape_file)

    def plan_restore(self, receipt: TapeReceipt, members: tuple[RelPath, ...], destination: Endpoint) -> HpssJob:
        """The job that restores ``members`` of ``receipt`` into ``destination`` (nothing is submitted).

        Raises:
            TapeError: a member is not in the receipt, or cannot go into an htar member list, or
                the tape path is not one HSI would read literally.
        """
        by_path: Mapping[RelPath, FileRecord] = {m.path: m for m in receipt.members}
        unknown = sorted(str(m) for m in members if m not in by_path)
        if unknown:
            raise TapeError(
                f"tape bundle {receipt.bundle} at {receipt.tape_path} has no member(s) {', '.join(unknown[:5])} "
                f"in its receipt; nothing was restored"
            )
        tape_file = _tape_file(receipt)
        wanted = [by_path[m] for m in dict.fromkeys(members)]
        header = self._header(f"hpss-restore-{receipt.bundle}")
        if is_cput(receipt):
            (member,) = wanted
            script = _CPUT_RESTORE.substitute(
                header=header.render(),
                bundle=q(hpss_component(receipt.bundle)),
                dest_file=q(destination.full_path(member.path)),
                size=q(str(member.size)),
                get=q(f"get member : {tape_file}"),
            )
        else:
            names = [_check_list_member(receipt.bundle, m.path) for m in wanted]
            sizes = [f"{m.size}\t{n}" for m, n in zip(wanted, names, strict=True)]
            script = _HTAR_RESTORE.substitute(
                header=header.render(),
                bundle=q(hpss_component(receipt.bundle)),
                dest_root=q(destination.root_path),
                tape_file=q(tape_file),
                members=_heredoc_b64('"${WORK}/members"', names),
                expected=_heredoc_b64('"${WORK}/expected"', sizes),
            )
        return HpssJob(header.job_name, script, tape_file)

    # --- internals -----------------------------------------------------------------

    def _header(self, name: str) -> BatchHeader:
        s = self._settings
        slurm = self._jobs.settings.slurm
        return BatchHeader(
            job_name=job_name(name),
            account=s.account or slurm.account,
            qos=s.qos,
            constraint=s.constraint,
            nodes=1,
            time_limit_s=s.time_limit_s,
            log_dir=s.log_dir or slurm.log_dir,
            extra=s.extra_directives,
        )

    def _run(self, plan: HpssJob, what: str) -> tuple[str, JobStatus]:
        log_dir = self._settings.log_dir or self._jobs.settings.slurm.log_dir
        try:
            job_id = self._jobs.submit_script(plan.script, job_name=plan.job_name, log_dir=log_dir)
        except JobError as exc:
            raise _tape_error(f"{what}: the transfer job was not submitted: {exc}", exc) from exc
        try:
            status = self._jobs.wait(job_id, self._settings.job_timeout_s)
        except JobError as exc:
            raise _tape_error(f"{what}: job {job_id} could not be followed: {exc}", exc) from exc
        if not status.state.terminal:
            self._cancel(job_id)
            raise TapeError(
                f"{what}: job {job_id} did not finish within {self._settings.job_timeout_s:.0f} s "
                f"(last state {status.state.value}); it was cancelled - try again when the queue is shorter"
            )
        if not status.succeeded:
            reason = f" ({status.reason})" if status.reason else ""
            tail = status.log_tail.strip() or "(no log tail)"
            raise TapeError(
                f"{what}: job {job_id} ended {status.state.value} with exit code {status.exit_code}{reason}; "
                f"log tail:\n{tail}"
            )
        return job_id, status

    def _cancel(self, job_id: str) -> None:
        try:
            self._jobs.cancel(job_id)
        except JobError as exc:
            logger.error("could not cancel HPSS job %s: %s; cancel it by hand", job_id, exc)

    def _read_log(self, job_id: str, what: str) -> str:
        try:
            return self._jobs.read_log(job_id)
        except JobError as exc:
            raise _tape_error(f"{what}: the log of job {job_id} cannot be read: {exc}", exc) from exc

    @staticmethod
    def _htar_problems(receipt: TapeReceipt, listing: str) -> list[str]:
        on_tape = parse_htar_listing(listing)
        problems = []
        for member in receipt.members:
            size = on_tape.get(member.path.value)
            if size is None:
                problems.append(f"{member.path} is missing from the archive")
            elif size != member.size:
                problems.append(f"{member.path} is {size} bytes on tape, {member.size} in the receipt")
        extra = set(on_tape) - {m.path.value for m in receipt.members}
        if extra and not problems:
            logger.warning("tape bundle %s holds %d file(s) not in its receipt", receipt.bundle, len(extra))
        return problems

    def _cput_problems(self, receipt: TapeReceipt, listing: str, log: str) -> list[str]:
        (member,) = receipt.members
        size = parse_hsi_ls(listing, receipt.tape_path)
        if size is None:
            return [f"{receipt.tape_path} is not listed by hsi"]
        if size != member.size:
            return [f"{receipt.tape_path} is {size} bytes on tape, {member.size} in the receipt"]
        checksum = member.checksum
        if checksum is not None and checksum.algorithm is ChecksumAlgorithm.MD5 and self._settings.checksum:
            hashes = _section(log, HASH_BEGIN, HASH_END) or ""
            md5 = parse_hsi_md5(hashes, receipt.tape_path)
            if md5 is None:
                logger.warning("HPSS holds no MD5 for %s; verified by size only", receipt.tape_path)
            elif md5 != checksum.digest:
                return [f"{receipt.tape_path} has MD5 {md5} on tape, {checksum.digest} in the receipt"]
        return []


def _tape_error(message: str, cause: JobError) -> TapeError:
    if isinstance(cause, TransientError):
        return TransientTapeError(f"{message}; retry later")
    return TapeError(message)


__all__ = [
    "HASH_BEGIN",
    "HASH_END",
    "LISTING_BEGIN",
    "LISTING_END",
    "HpssArchive",
    "HpssJob",
    "hpss_component",
    "is_cput",
    "parse_hsi_ls",
    "parse_hsi_md5",
    "parse_htar_listing",
]
