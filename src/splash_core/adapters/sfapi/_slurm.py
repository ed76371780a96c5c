"""Reading Slurm's squeue and sacct rows (as the SFAPI returns them) into domain terms."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo

import attrs

from splash_core.domain.models import JobState

_STATES: Mapping[str, JobState] = {
    # waiting
    "PENDING": JobState.PENDING,
    "PD": JobState.PENDING,
    "CONFIGURING": JobState.PENDING,
    "CF": JobState.PENDING,
    "REQUEUED": JobState.PENDING,
    "RQ": JobState.PENDING,
    "REQUEUE_HOLD": JobState.PENDING,
    "RH": JobState.PENDING,
    "REQUEUE_FED": JobState.PENDING,
    "RF": JobState.PENDING,
    "RESV_DEL_HOLD": JobState.PENDING,
    "RD": JobState.PENDING,
    # going
    "RUNNING": JobState.RUNNING,
    "R": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,
    "CG": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING,
    "SO": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "SI": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "RS": JobState.RUNNING,
    "SUSPENDED": JobState.RUNNING,
    "S": JobState.RUNNING,
    "STOPPED": JobState.RUNNING,
    "ST": JobState.RUNNING,
    # ended
    "COMPLETED": JobState.COMPLETED,
    "CD": JobState.COMPLETED,
    "FAILED": JobState.FAILED,
    "F": JobState.FAILED,
    "BOOT_FAIL": JobState.FAILED,
    "BF": JobState.FAILED,
    "SPECIAL_EXIT": JobState.FAILED,
    "SE": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED,
    "CA": JobState.CANCELLED,
    "REVOKED": JobState.CANCELLED,
    "RV": JobState.CANCELLED,
    "TIMEOUT": JobState.TIMEOUT,
    "TO": JobState.TIMEOUT,
    "DEADLINE": JobState.TIMEOUT,
    "DL": JobState.TIMEOUT,
    "OUT_OF_MEMORY": JobState.OUT_OF_MEMORY,
    "OOM": JobState.OUT_OF_MEMORY,
    "NODE_FAIL": JobState.NODE_FAIL,
    "NF": JobState.NODE_FAIL,
    "PREEMPTED": JobState.PREEMPTED,
    "PR": JobState.PREEMPTED,
}
_EXIT = re.compile(r"^\s*(-?\d+)(?::(\d+))?\s*$")
_NO_VALUE = frozenset({"", "unknown", "n/a", "none", "(null)"})


def map_state(raw: str) -> JobState:
    """The job state for a Slurm state as squeue or sacct print it.

    Handles ``CANCELLED by 12345``, sacct's truncation marker (``OUT_OF_ME+``) and squeue's
    short codes (``PD``, ``R``, ``CG``...). Anything unrecognised is UNKNOWN.
    """
    word = raw.strip().upper().split(" ", 1)[0].rstrip("+")
    if word in _STATES:
        return _STATES[word]
    if len(word) >= 6:  # sacct truncates long names: OUT_OF_ME+, REQUEUE_H+
        candidates = {state for full, state in _STATES.items() if len(full) > len(word) and full.startswith(word)}
        if len(candidates) == 1:
            return candidates.pop()
    return JobState.UNKNOWN


def parse_exit_code(raw: str) -> tuple[int | None, int]:
    """``(exit code, signal)`` from sacct's ``N:M``; a signal with exit 0 gives 128 + signal."""
    match = _EXIT.match(raw or "")
    if match is None:
        return None, 0
    code, signal = int(match.group(1)), int(match.group(2) or 0)
    if code == 0 and signal:
        return 128 + signal, signal
    return code, signal


def parse_time(raw: str, zone: tzinfo | None) -> datetime | None:
    """A Slurm time (``2024-03-01T10:00:00``, site-local) as an aware UTC datetime; None if absent."""
    value = (raw or "").strip()
    if value.lower() in _NO_VALUE:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone or UTC)
    return parsed.astimezone(UTC)


@attrs.frozen
class SlurmView:
    """One job as squeue or sacct described it."""

    state: JobState
    raw_state: str
    exit_code: int | None
    reason: str | None
    started_at: datetime | None
    finished_at: datetime | None
    job_name: str | None


def _reason(value: str | None) -> str | None:
    if value is None or value.strip().lower() in _NO_VALUE:
        return None
    return value.strip()


def from_squeue(row: Mapping[str, str], zone: tzinfo | None) -> SlurmView:
    """A view of a squeue row (no exit code: squeue does not know it)."""
    raw = row.get("state") or row.get("st") or ""
    return SlurmView(
        state=map_state(raw),
        raw_state=raw,
        exit_code=None,
        reason=_reason(row.get("reason") or row.get("nodelist(reason)")),
        started_at=parse_time(row.get("start_time", ""), zone),
        finished_at=parse_time(row.get("end_time", ""), zone) if map_state(raw).terminal else None,
        job_name=row.get("name") or None,
    )


def from_sacct(row: Mapping[str, str], zone: tzinfo | None) -> SlurmView:
    """A view of a sacct row, with its exit code.

    A COMPLETED job with a non-zero exit code or a signal is FAILED: success is only ever
    COMPLETED with exit code 0.
    """
    raw = row.get("state", "")
    state = map_state(raw)
    code, signal = parse_exit_code(row.get("exitcode", ""))
    notes = []
    if raw.strip() and raw.strip().upper() != state.value:
        notes.append(f"Slurm state {raw.strip()}")
    if state is JobState.COMPLETED and code not in (None, 0):
        state = JobState.FAILED
        notes.insert(
            0, f"Slurm said COMPLETED but the script did not exit 0 (ExitCode {row.get('exitcode', '').strip()})"
        )
    elif signal:
        notes.append(f"killed by signal {signal} (ExitCode {row.get('exitcode', '').strip()})")
    derived, _ = parse_exit_code(row.get("derivedexitcode", ""))
    if derived not in (None, 0):
        notes.append(f"a job step exited {row.get('derivedexitcode', '').strip()}")
    reason = _reason(row.get("reason"))
    if reason and state.terminal and state is not JobState.COMPLETED:
        notes.append(f"reason {reason}")
    return SlurmView(
        state=state,
        raw_state=raw,
        exit_code=code,
        reason="; ".join(notes) if notes else reason,
        started_at=parse_time(row.get("start", ""), zone),
        finished_at=parse_time(row.get("end", ""), zone),
        job_name=row.get("jobname") or None,
    )


def pick_row(rows: Sequence[Mapping[str, str]], job_id: str) -> Mapping[str, str] | None:
    """The row of the job itself (not of its steps like ``123.batch``)."""
    for key in ("jobid", "jobidraw", "job_id"):
        for row in rows:
            if row.get(key, "").strip() == job_id:
                return row
    return None


__all__ = ["SlurmView", "from_sacct", "from_squeue", "map_state", "parse_exit_code", "parse_time", "pick_row"]
