"""HpssArchive: golden transfer scripts, hostile names, and real runs against the simulated SFAPI/HPSS."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from splash_core.adapters.sfapi import HpssArchive, HpssSettings, SfapiJobs, SlurmSettings
from splash_core.adapters.sfapi.hpss import hpss_component, is_cput, parse_hsi_ls, parse_hsi_md5, parse_htar_listing
from splash_core.domain.errors import TapeError, TransientTapeError
from splash_core.domain.models import (
    ArchiveMethod,
    Checksum,
    ChecksumAlgorithm,
    Endpoint,
    FileRecord,
    Site,
    TapeBundle,
    TapeReceipt,
)
from splash_core.domain.paths import RelPath
from tests.fakes.clock import FakeClock
from tests.unit.adapters.sfapi.simulated import SimulatedSfapi

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("SPLASH_UPDATE_GOLDEN") == "1"
HOSTILE = [
    "P1/a b.h5",
    "P1/x'$(rm -rf ~)'.h5",
    "P1/back`tick`.h5",
    "P1/ünïcødé.h5",
    'P1/quote"d;ls *.h5',
    "P1/-dash.h5",
    "P1/sub dir/$HOME.h5",
    "P1/SPLASH_END_OF_LIST",
    "P1/tab\\and\\backslash.h5",
]
P = RelPath.parse


def bundle_of(records: list[FileRecord], name: str = "P1_2024-1.tar") -> TapeBundle:
    return TapeBundle(name, ArchiveMethod.HTAR, tuple(records), "P1", 2024, 1)


def heredocs(script: str) -> list[str]:
    """The decoded contents of every base64 here-document in ``script``."""
    blocks = re.findall(r"<<'SPLASH_END_OF_LIST'\n(.*?)\nSPLASH_END_OF_LIST\n", script, re.DOTALL)
    return [base64.b64decode(b).decode("utf-8", "surrogateescape") for b in blocks]


def bash_syntax_ok(script: str, tmp_path: Path) -> None:
    path = tmp_path / "syntax.sh"
    path.write_text(script)
    done = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


# --- scripts without running them ---------------------------------------------------------

CFS733 = Endpoint("nersc733_alsdev_raw", "nersc", "/global/cfs/cdirs/als/data_mover/7.3.3/raw", Site.OFF_SITE)
RESTORE = Endpoint("nersc733_restore", "nersc", "/global/cfs/cdirs/als/data_mover/7.3.3/restore", Site.OFF_SITE)


@pytest.fixture
def golden_archive(sim: SimulatedSfapi, clock: FakeClock) -> Iterator[HpssArchive]:
    """An archive with fixed NERSC paths (its jobs are only rendered)."""
    settings = sim.settings(slurm=SlurmSettings(account="als", log_dir="/global/cfs/cdirs/als/data_mover/logs/hpss"))
    jobs = SfapiJobs(settings, sim.credentials(), client_factory=sim.client_factory, clock=clock)
    yield HpssArchive(jobs, HpssSettings(tape_root="/home/a/alsdev/data_mover", extra_directives=("--mem=20GB",)))
    jobs.close()


def golden_cases(archive: HpssArchive) -> dict[str, str]:
    members = (FileRecord(P("P1/scan 001.tif"), 1024), FileRecord(P("P1/sub/scan'002.tif"), 2048))
    htar = bundle_of(list(members))
    cput_record = FileRecord(P("P1/huge scan.h5"), 70 * 10**9, Checksum(ChecksumAlgorithm.MD5, "0" * 32))
    cput = TapeBundle("P1/huge scan.h5", ArchiveMethod.HSI_CPUT, (cput_record,), "P1", 2024, 1)
    htar_receipt = TapeReceipt(htar.name, archive.tape_path(htar, CFS733), members)
    cput_receipt = TapeReceipt(cput.name, archive.tape_path(cput, CFS733), (cput_record,))
    return {
        "hpss_htar_archive": archive.plan_archive(htar, CFS733).script,
        "hpss_cput_archive": archive.plan_archive(cput, CFS733).script,
        "hpss_htar_verify": archive.plan_verify(htar_receipt).script,
        "hpss_cput_verify": archive.plan_verify(cput_receipt).script,
        "hpss_htar_restore": archive.plan_restore(htar_receipt, (members[1].path,), RESTORE).script,
        "hpss_cput_restore": archive.plan_restore(cput_receipt, (cput_record.path,), RESTORE).script,
    }


@pytest.mark.parametrize(
    "case",
    [
        "hpss_htar_archive",
        "hpss_cput_archive",
        "hpss_htar_verify",
        "hpss_cput_verify",
        "hpss_htar_restore",
        "hpss_cput_restore",
    ],
)
def test_transfer_scripts_match_golden(golden_archive: HpssArchive, case: str, tmp_path: Path) -> None:
    """Each HPSS job renders exactly the reviewed golden script, which bash accepts."""
    script = golden_cases(golden_archive)[case]
    golden = GOLDEN / f"{case}.sh"
    if UPDATE:
        golden.write_text(script)
    assert script == golden.read_text()
    bash_syntax_ok(script, tmp_path)
    assert "#SBATCH --qos=xfer" in script
    assert "set -euo pipefail" in script


def test_htar_member_list_is_exact_and_never_in_shell_text(golden_archive: HpssArchive, tmp_path: Path) -> None:
    """Hostile names travel only as base64: the decoded list is exactly the names, one per line."""
    records = [FileRecord(P(n), 10 + i) for i, n in enumerate(HOSTILE)]
    script = golden_archive.plan_archive(bundle_of(records), CFS733).script
    bash_syntax_ok(script, tmp_path)
    members, expected = heredocs(script)
    assert members == "".join(f"{r.path.value}\n" for r in records)
    assert expected == "".join(f"{r.size}\t{r.path.value}\n" for r in records)
    for name in HOSTILE:
        if not name.endswith("SPLASH_END_OF_LIST"):  # that one is the delimiter on purpose
            assert name.split("/", 1)[1] not in script
    assert "rm -rf" not in script


def test_htar_list_decodes_in_bash(golden_archive: HpssArchive, tmp_path: Path) -> None:
    """bash itself decodes the here-document into the same bytes."""
    records = [FileRecord(P(n), 1) for n in HOSTILE]
    script = golden_archive.plan_archive(bundle_of(records), CFS733).script
    block = script[
        script.index("base64 -d") : script.index("SPLASH_END_OF_LIST\n", script.index("base64 -d") + 60) + 19
    ]
    snippet = f"WORK={tmp_path}\n{block}\n"
    done = subprocess.run(["bash", "-c", snippet], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "members").read_bytes() == "".join(f"{n}\n" for n in HOSTILE).encode()


def test_name_with_line_break_is_refused(golden_archive: HpssArchive) -> None:
    """A member name with a line break (built around RelPath's own check) is refused for htar."""
    bad = object.__new__(RelPath)
    object.__setattr__(bad, "value", "P1/line\nbreak.h5")
    with pytest.raises(TapeError, match="line break") as info:
        golden_archive.plan_archive(bundle_of([FileRecord(bad, 1)]), CFS733)
    assert "nothing was written" in str(info.value)


def test_name_with_outer_whitespace_is_refused_for_htar(golden_archive: HpssArchive) -> None:
    """htar member lists lose leading/trailing blanks, so such names are refused, by name."""
    with pytest.raises(TapeError, match="white space"):
        golden_archive.plan_archive(bundle_of([FileRecord(P("P1/trailing.h5 "), 1)]), CFS733)


def test_empty_bundle_is_refused(golden_archive: HpssArchive) -> None:
    """A bundle without members is refused before any job."""
    with pytest.raises(TapeError, match="no members"):
        golden_archive.archive(bundle_of([]), CFS733)


def test_tape_paths_are_plain_and_stable(golden_archive: HpssArchive) -> None:
    """Tape paths follow the layout; unsafe characters are replaced and hashed, deterministically."""
    htar = bundle_of([FileRecord(P("P1/a"), 1)])
    assert golden_archive.tape_path(htar, CFS733) == "/home/a/alsdev/data_mover/nersc733_alsdev_raw/P1/P1_2024-1.tar"
    cput = TapeBundle("P1/x y/ünï.h5", ArchiveMethod.HSI_CPUT, (FileRecord(P("P1/x y/ünï.h5"), 1),), "P1", 2024, 1)
    path = golden_archive.tape_path(cput, CFS733)
    assert path == golden_archive.tape_path(cput, CFS733)
    assert re.fullmatch(r"[A-Za-z0-9_./+-]+", path), path
    assert path.startswith("/home/a/alsdev/data_mover/nersc733_alsdev_raw/P1/x_y-")
    assert path.endswith(".h5")


@pytest.mark.parametrize(
    ("raw", "kept"),
    [("P1_2024-1.tar", True), ("scan.h5", True), ("a b.h5", False), ("*.h5", False), ("..", False), ("-x", False)],
)
def test_hpss_component(raw: str, kept: bool) -> None:
    """Plain names are kept; others become plain names with a hash."""
    out = hpss_component(raw)
    assert (out == raw) is kept
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", out)


def test_method_is_read_from_the_receipt() -> None:
    """A receipt whose only member is named as the bundle is a cput file; others are htar archives."""
    one = FileRecord(P("P1/big.h5"), 1)
    assert is_cput(TapeReceipt("P1/big.h5", "/t/P1/big.h5", (one,)))
    assert not is_cput(TapeReceipt("P1_2024-1.tar", "/t/P1/P1_2024-1.tar", (one,)))


def test_restore_of_unknown_member_is_refused_without_a_job(sim: SimulatedSfapi, golden_archive: HpssArchive) -> None:
    """Restoring a path the receipt does not hold is refused before anything is submitted."""
    receipt = TapeReceipt("P1_2024-1.tar", "/home/x/P1_2024-1.tar", (FileRecord(P("P1/a"), 1),))
    with pytest.raises(TapeError, match="has no member\\(s\\) P1/zzz"):
        golden_archive.restore(receipt, (P("P1/zzz"),), RESTORE)
    assert sim.jobs == {}


# --- listing parsers ---------------------------------------------------------------------------


def test_parse_htar_listing() -> None:
    """htar -tvf lines give file names (with spaces) and sizes; directories and chatter are skipped."""
    text = "\n".join(
        [
            "HTAR: drwxr-xr-x  alsdev/als          0 2025-01-06 09:00  P1/",
            "HTAR: -rw-r--r--  alsdev/als       1234 2025-01-06 09:00  P1/a b.h5",
            "HTAR: -rw-r-----  alsdev/als         99 2025-01-06 09:00:01  P1/ünï.h5",
            "HTAR: -rw-r--r--  alsdev/als          7 2025-01-06 09:00  P1/\\303\\274.h5",
            "HTAR: Listing complete for /home/a/P1_2024-1.tar, 3 files 2 bytes",
            "HTAR: HTAR SUCCESSFUL",
        ]
    )
    listed = parse_htar_listing(text)
    assert listed["P1/a b.h5"] == 1234
    assert listed["P1/ünï.h5"] == 99
    assert listed["P1/ü.h5"] == 7
    assert "P1/" not in listed


def test_parse_hsi_ls_and_md5() -> None:
    """hsi ls -l gives the size (before the month); hashlist gives the md5."""
    tape = "/home/a/alsdev/data_mover/x/P1/big.h5"
    listing = f"/home/a/alsdev/data_mover/x/P1:\n-rw-r-----    1 alsdev    als   70000000000 Jan 10  2025 {tape}\n"
    assert parse_hsi_ls(listing, tape) == 70_000_000_000
    assert parse_hsi_ls("*** hpss_Lstat: No such file", tape) is None
    md5 = "d41d8cd98f00b204e9800998ecf8427e"
    assert parse_hsi_md5(f"{md5}  md5  {tape} (hsi)", tape) == md5
    assert parse_hsi_md5(f"(none)  {tape}", tape) is None


# --- real runs against the simulated SFAPI and HPSS -------------------------------------------


@attrs.define
class World:
    sim: SimulatedSfapi
    archive: HpssArchive
    source: Endpoint
    destination: Endpoint
    hpss: Path

    def put(self, rel: str, data: bytes) -> FileRecord:
        path = Path(self.source.root_path) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return FileRecord(P(rel), len(data), Checksum(ChecksumAlgorithm.MD5, hashlib.md5(data).hexdigest()))

    def restored(self, rel: str) -> bytes:
        return (Path(self.destination.root_path) / rel).read_bytes()


@pytest.fixture
def world(sim: SimulatedSfapi, clock: FakeClock, tmp_path: Path) -> Iterator[World]:
    """Source and destination folders, a folder standing in for HPSS, and the archive on top."""
    jobs = SfapiJobs(sim.settings(), sim.credentials(), client_factory=sim.client_factory, clock=clock)
    hpss = tmp_path / "hpss"
    archive = HpssArchive(jobs, HpssSettings(tape_root=str(hpss)))
    source = Endpoint("nersc733_alsdev_raw", "nersc", str(tmp_path / "cfs" / "raw"), Site.OFF_SITE)
    destination = Endpoint("restore", "nersc", str(tmp_path / "cfs" / "restore"), Site.OFF_SITE)
    yield World(sim, archive, source, destination, hpss)
    jobs.close()


def test_hostile_names_round_trip(world: World) -> None:
    """Files with spaces, quotes, $(...), backticks, unicode and leading dashes go to tape and back."""
    records = [world.put(n, f"content of {n}".encode()) for n in HOSTILE]
    receipt = world.archive.archive(bundle_of(records), world.source)
    assert receipt.job_id is not None
    assert not receipt.verified
    assert receipt.tape_path == f"{world.hpss}/nersc733_alsdev_raw/P1/P1_2024-1.tar"
    verified = world.archive.verify(receipt)
    assert verified.verified
    chosen = tuple(r.path for r in records[1:5])
    world.archive.restore(verified, chosen, world.destination)
    for path in chosen:
        assert world.restored(path.value) == f"content of {path.value}".encode()
    assert not (Path(world.destination.root_path) / records[0].path.value).exists()
    assert not list(Path.home().glob("PWNED*"))


def test_cput_round_trip_with_md5(world: World) -> None:
    """A single large file goes by hsi cput under a plain name, verifies by size and MD5, and comes back."""
    record = world.put("P1/huge scan ü.h5", b"x" * 4096)
    bundle = TapeBundle(record.path.value, ArchiveMethod.HSI_CPUT, (record,), "P1", 2024, 1)
    receipt = world.archive.archive(bundle, world.source)
    assert re.fullmatch(r"[A-Za-z0-9_./+-]+", receipt.tape_path)
    assert world.archive.verify(receipt).verified
    world.archive.restore(receipt, (record.path,), world.destination)
    assert world.restored(record.path.value) == b"x" * 4096
    assert [p.name for p in Path(world.destination.root_path, "P1").iterdir()] == ["huge scan ü.h5"]


def test_cput_md5_mismatch_fails_verification(world: World) -> None:
    """An MD5 on HPSS that differs from the receipt's fails verification."""
    record = world.put("P1/big.h5", b"y" * 100)
    receipt = world.archive.archive(
        TapeBundle("P1/big.h5", ArchiveMethod.HSI_CPUT, (record,), "P1", 2024, 1), world.source
    )
    for meta in world.sim.hsi_meta.iterdir():
        meta.write_text(json.dumps({"md5": "f" * 32}))
    with pytest.raises(TapeError, match=r"has MD5 f{32} on tape"):
        world.archive.verify(receipt)


def test_corrupted_member_fails_verification(world: World) -> None:
    """A member whose size on tape differs is reported with the bundle and the job."""
    records = [world.put("P1/a.h5", b"a" * 10), world.put("P1/b.h5", b"b" * 20)]
    receipt = world.archive.archive(bundle_of(records), world.source)
    rewrite_tar(Path(receipt.tape_path), lambda name, data: data[:-1] if name == "P1/a.h5" else data)
    with pytest.raises(TapeError, match=r"P1/a.h5 is 9 bytes on tape, 10 in the receipt") as info:
        world.archive.verify(receipt)
    assert receipt.bundle in str(info.value)
    assert "job " in str(info.value)


def test_missing_member_fails_verification(world: World) -> None:
    """A member absent from the archive fails verification."""
    records = [world.put("P1/a.h5", b"a"), world.put("P1/b.h5", b"b")]
    receipt = world.archive.archive(bundle_of(records), world.source)
    rewrite_tar(Path(receipt.tape_path), lambda name, data: None if name == "P1/b.h5" else data)
    with pytest.raises(TapeError, match=r"P1/b\.h5 is missing from the archive"):
        world.archive.verify(receipt)


def test_missing_bundle_fails_verification_with_log_tail(world: World) -> None:
    """A bundle that is not on HPSS fails the verify job; the error carries its log tail."""
    receipt = TapeReceipt("P1_2024-1.tar", f"{world.hpss}/nope/P1_2024-1.tar", (FileRecord(P("P1/a"), 1),))
    with pytest.raises(TapeError, match="ended FAILED with exit code 72") as info:
        world.archive.verify(receipt)
    assert "No such file or directory" in str(info.value)


def test_member_changed_since_planning_is_not_archived(world: World) -> None:
    """A member whose size differs from the plan stops the job before anything reaches tape."""
    record = world.put("P1/a.h5", b"aaaa")
    world.put("P1/a.h5", b"aaaaaaaa")
    with pytest.raises(TapeError, match="exit code 3") as info:
        world.archive.archive(bundle_of([record]), world.source)
    assert "is 8 bytes, planned 4" in str(info.value)
    assert not world.hpss.exists() or not list(world.hpss.rglob("*.tar"))


def test_missing_member_is_not_archived(world: World) -> None:
    """A planned member that is gone stops the job; the message names it."""
    Path(world.source.root_path, "P1").mkdir(parents=True)
    with pytest.raises(TapeError, match=r"missing or not a regular file: P1/gone\.h5"):
        world.archive.archive(bundle_of([FileRecord(P("P1/gone.h5"), 3)]), world.source)


def test_restore_checks_sizes(world: World) -> None:
    """A restore whose file comes back with another size than the receipt says fails."""
    record = world.put("P1/a.h5", b"abc")
    receipt = world.archive.verify(world.archive.archive(bundle_of([record]), world.source))
    wrong = attrs.evolve(receipt, members=(FileRecord(record.path, 99),))
    with pytest.raises(TapeError, match=r"restored P1/a\.h5 is 3 bytes, expected 99"):
        world.archive.restore(wrong, (record.path,), world.destination)


def test_sfapi_outage_is_a_transient_tape_error(world: World) -> None:
    """When the SFAPI keeps refusing submissions, the archive raises TransientTapeError."""
    record = world.put("P1/a.h5", b"abc")
    world.sim.fail_next(10, status=503, path="compute/jobs")
    with pytest.raises(TransientTapeError, match="not submitted"):
        world.archive.archive(bundle_of([record]), world.source)


def test_transfer_job_that_hangs_is_cancelled(sim: SimulatedSfapi, clock: FakeClock, tmp_path: Path) -> None:
    """A transfer job still queued at the job timeout is cancelled and reported."""
    jobs = SfapiJobs(sim.settings(), sim.credentials(), client_factory=sim.client_factory, clock=clock)
    archive = HpssArchive(jobs, HpssSettings(tape_root=str(tmp_path / "hpss"), job_timeout_s=600))
    source = Endpoint("src", "nersc", str(tmp_path / "src"), Site.OFF_SITE)
    (tmp_path / "src" / "P1").mkdir(parents=True)
    (tmp_path / "src" / "P1" / "a").write_bytes(b"1")
    sim.plan_next(queue=("PENDING",) * 1000)
    with pytest.raises(TapeError, match=r"did not finish within 600 s.*cancelled"):
        archive.archive(bundle_of([FileRecord(P("P1/a"), 1)]), source)
    (job,) = sim.jobs.values()
    assert job.state.startswith("CANCELLED")


def rewrite_tar(path: Path, change: object) -> None:
    """Rewrite the tar at ``path``, passing each member's bytes through ``change`` (None drops it)."""
    with tarfile.open(path) as tar:
        items = [(m, tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()]  # type: ignore[union-attr]
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for member, data in items:
            new = change(member.name, data)  # type: ignore[operator]
            if new is None:
                continue
            member.size = len(new)
            import io

            tar.addfile(member, io.BytesIO(new))


@pytest.mark.parametrize("tape_path", ["/home/x/a b.tar", "/home/x/*.tar", "/home/x/../y.tar", "relative.tar"])
def test_receipt_with_an_unplain_tape_path_is_refused(golden_archive: HpssArchive, tape_path: str) -> None:
    """A receipt whose tape path HSI would misread is refused before any job."""
    receipt = TapeReceipt("P1_2024-1.tar", tape_path, (FileRecord(P("P1/a"), 1),))
    with pytest.raises(TapeError, match="not a plain absolute HPSS path"):
        golden_archive.plan_verify(receipt)
    with pytest.raises(TapeError, match="not a plain absolute HPSS path"):
        golden_archive.plan_restore(receipt, (P("P1/a"),), RESTORE)
