"""A tiny resumable step runner: each step's outcome is a ledger record, so a re-run skips done work.

Steps are keyed ``<run_key>/<step>``. A step recorded DONE is not run again: its recorded
detail (a JSON object of strings) is returned instead. A step recorded STARTED (the process
died inside it) or FAILED runs again, so every step must be safe to repeat, which the
services it calls are (moves skip verified copies, jobs and tape bundles have idempotency
keys, scheduling the same prune twice keeps one).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from splash_core.domain.errors import InvalidInput, PipelineError, SplashError
from splash_core.domain.events import StepRecord, StepState

if TYPE_CHECKING:
    from splash_core.ports.clock import ClockPort
    from splash_core.ports.ledger import LedgerPort

logger = logging.getLogger(__name__)

StepDetail = Mapping[str, str]
"""What a step returns and the ledger keeps: a JSON object of strings."""

StepFn = Callable[[], "StepDetail | None"]
"""The work of a step; returns its detail (None for nothing to keep)."""


class Pipeline:
    """Run named steps once per ``run_key``, recording STARTED, DONE or FAILED in the ledger.

    Args:
        ledger: where step outcomes are kept.
        clock: stamps the records.
        run_key: identifies this run (e.g. ``bl832/new_file/<dataset key>``); the same key on a
            re-run resumes it.
    """

    def __init__(self, ledger: LedgerPort, clock: ClockPort, run_key: str) -> None:
        if not run_key or run_key != run_key.strip():
            raise InvalidInput(f"pipeline run key {run_key!r} must be non-empty without surrounding spaces")
        self._ledger = ledger
        self._clock = clock
        self.run_key = run_key
        self.ran: list[str] = []
        """Steps whose work ran in this process (not skipped as already done)."""

    def key(self, name: str) -> str:
        """The ledger key of step ``name``."""
        return f"{self.run_key}/{name}"

    def state(self, name: str) -> StepState | None:
        """The recorded state of step ``name``, or None if it never started."""
        record = self._ledger.step(self.key(name))
        return record.state if record is not None else None

    def done(self, name: str) -> bool:
        """Whether step ``name`` is recorded DONE."""
        return self.state(name) is StepState.DONE

    def step(self, name: str, fn: StepFn, *, depends_on: Sequence[str] = ()) -> StepDetail:
        """Run step ``name`` unless it is already done; return its detail.

        Args:
            name: unique within the run; ``/`` is allowed (``copy/a->b``).
            fn: the work; must be safe to repeat after a crash.
            depends_on: steps that must be DONE first; if one is not, ``fn`` does not run.

        Raises:
            PipelineError: the step (or a step it depends on) failed; ``step`` names it and
                ``cause`` holds the underlying error.
        """
        if not name:
            raise InvalidInput(f"pipeline {self.run_key}: a step needs a name")
        for dependency in depends_on:
            if not self.done(dependency):
                raise PipelineError(
                    f"pipeline {self.run_key}: step {name!r} did not run because step {dependency!r} "
                    f"it depends on is {self._describe(dependency)}; fix that step and run again",
                    step=dependency,
                )
        key = self.key(name)
        record = self._ledger.step(key)
        if record is not None and record.state is StepState.DONE:
            logger.debug("step %s already done", key)
            return _load(record.detail)
        self._ledger.record_step(StepRecord(key, StepState.STARTED, self._clock.now()))
        self.ran.append(name)
        try:
            detail = dict(fn() or {})
            encoded = _dump(detail)
        except Exception as exc:
            cause = exc if isinstance(exc, SplashError) else None
            message = f"pipeline {self.run_key}: step {name!r} failed: {type(exc).__name__}: {exc}"
            self._ledger.record_step(
                StepRecord(key, StepState.FAILED, self._clock.now(), json.dumps({"error": str(exc)}))
            )
            logger.error("%s", message)
            raise PipelineError(message, step=name, cause=cause) from exc
        self._ledger.record_step(StepRecord(key, StepState.DONE, self._clock.now(), encoded))
        return detail

    def _describe(self, name: str) -> str:
        record = self._ledger.step(self.key(name))
        if record is None:
            return "not run"
        if record.state is StepState.FAILED:
            error = _load(record.detail).get("error")
            return f"failed ({error})" if error else "failed"
        return str(record.state.value)


def _dump(detail: Mapping[str, str]) -> str:
    for k, v in detail.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise InvalidInput(f"step detail must map strings to strings; got {k!r}: {v!r}")
    return json.dumps(dict(detail), sort_keys=True)


def _load(detail: str) -> dict[str, str]:
    if not detail:
        return {}
    loaded = json.loads(detail)
    if not isinstance(loaded, dict):
        return {}
    return {str(k): str(v) for k, v in loaded.items()}


__all__ = ["Pipeline", "StepDetail", "StepFn"]
