"""Reading squeue and sacct rows: states, exit codes, times, step rows."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from splash_core.adapters.sfapi._slurm import from_sacct, from_squeue, map_state, parse_exit_code, parse_time, pick_row
from splash_core.domain.models import JobState


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("PENDING", JobState.PENDING),
        ("PD", JobState.PENDING),
        ("CONFIGURING", JobState.PENDING),
        ("REQUEUED", JobState.PENDING),
        ("RUNNING", JobState.RUNNING),
        ("R", JobState.RUNNING),
        ("COMPLETING", JobState.RUNNING),
        ("SUSPENDED", JobState.RUNNING),
        ("COMPLETED", JobState.COMPLETED),
        ("CD", JobState.COMPLETED),
        ("FAILED", JobState.FAILED),
        ("BOOT_FAIL", JobState.FAILED),
        ("CANCELLED", JobState.CANCELLED),
        ("CANCELLED by 12345", JobState.CANCELLED),
        ("CANCELLED+", JobState.CANCELLED),
        ("TIMEOUT", JobState.TIMEOUT),
        ("DEADLINE", JobState.TIMEOUT),
        ("OUT_OF_MEMORY", JobState.OUT_OF_MEMORY),
        ("OUT_OF_ME+", JobState.OUT_OF_MEMORY),
        ("NODE_FAIL", JobState.NODE_FAIL),
        ("PREEMPTED", JobState.PREEMPTED),
        ("completed", JobState.COMPLETED),
        ("COMPLE+", JobState.UNKNOWN),
        ("SOMETHING_NEW", JobState.UNKNOWN),
        ("", JobState.UNKNOWN),
    ],
)
def test_map_state(raw: str, state: JobState) -> None:
    """Slurm's long names, short codes and truncations map to job states; the rest is UNKNOWN."""
    assert map_state(raw) is state


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0:0", (0, 0)),
        ("1:0", (1, 0)),
        ("0:9", (137, 9)),
        ("2:15", (2, 15)),
        ("3", (3, 0)),
        ("", (None, 0)),
        ("x", (None, 0)),
    ],
)
def test_parse_exit_code(raw: str, expected: tuple[int | None, int]) -> None:
    """sacct's N:M becomes (exit code, signal); a bare signal is 128 + signal."""
    assert parse_exit_code(raw) == expected


def test_parse_time_in_site_zone() -> None:
    """Slurm's local times are read in the site's zone and returned in UTC."""
    zone = ZoneInfo("America/Los_Angeles")
    assert parse_time("2025-01-06T01:00:00", zone) == datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    assert parse_time("Unknown", zone) is None
    assert parse_time("N/A", zone) is None
    assert parse_time("garbage", zone) is None


def test_completed_with_nonzero_exit_is_failed() -> None:
    """COMPLETED with exit code 1:0 is not a success."""
    view = from_sacct({"jobid": "1", "state": "COMPLETED", "exitcode": "1:0"}, None)
    assert view.state is JobState.FAILED
    assert view.exit_code == 1
    assert view.reason is not None
    assert "did not exit 0" in view.reason


def test_completed_killed_by_signal_is_failed() -> None:
    """COMPLETED with a signal (0:9) is a failure with exit code 137."""
    view = from_sacct({"jobid": "1", "state": "COMPLETED", "exitcode": "0:9"}, None)
    assert view.state is JobState.FAILED
    assert view.exit_code == 137


def test_cancelled_by_keeps_who() -> None:
    """'CANCELLED by N' is CANCELLED, and the reason keeps Slurm's words."""
    view = from_sacct({"jobid": "1", "state": "CANCELLED by 4242", "exitcode": "0:15"}, None)
    assert view.state is JobState.CANCELLED
    assert view.reason is not None
    assert "CANCELLED by 4242" in view.reason


def test_squeue_has_no_exit_code() -> None:
    """A squeue row gives state, reason and name but never an exit code."""
    view = from_squeue({"jobid": "7", "state": "PENDING", "reason": "Priority", "name": "recon"}, None)
    assert (view.state, view.exit_code, view.reason, view.job_name) == (JobState.PENDING, None, "Priority", "recon")


def test_pick_row_ignores_steps() -> None:
    """The job's own row is picked, not its .batch or .extern step."""
    rows = [{"jobid": "7.batch", "state": "FAILED"}, {"jobid": "7", "state": "COMPLETED"}, {"jobid": "7.extern"}]
    assert pick_row(rows, "7") == {"jobid": "7", "state": "COMPLETED"}
    assert pick_row(rows[:1], "7") is None
