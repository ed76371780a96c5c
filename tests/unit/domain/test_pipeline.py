"""Pipeline: steps recorded in the ledger, done steps skipped on re-run, failures stop dependants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from splash_core.domain.errors import PipelineError, TransferFailed
from splash_core.domain.events import StepRecord, StepState
from splash_core.domain.services.pipeline import Pipeline
from tests.fakes import FakeClock, FakeLedger


def make(ledger: FakeLedger | None = None) -> Pipeline:
    return Pipeline(ledger or FakeLedger(), FakeClock(), "bl832/new_file/ds1")


def test_done_step_is_not_redone() -> None:
    """A step recorded DONE returns its recorded detail without running again."""
    ledger = FakeLedger()
    calls: list[str] = []

    def work() -> dict[str, str]:
        calls.append("x")
        return {"task": "t-1"}

    assert make(ledger).step("copy", work) == {"task": "t-1"}
    assert make(ledger).step("copy", work) == {"task": "t-1"}
    assert calls == ["x"]
    assert ledger.step("bl832/new_file/ds1/copy").state is StepState.DONE


def test_failing_step_names_itself_and_its_cause() -> None:
    """A failing step raises PipelineError naming the step and the underlying error, recorded FAILED."""
    ledger = FakeLedger()

    def boom() -> None:
        raise TransferFailed("task t-9 FAILED: quota")

    with pytest.raises(PipelineError, match=r"'copy'.*t-9") as info:
        make(ledger).step("copy", boom)
    assert info.value.step == "copy"
    assert isinstance(info.value.cause, TransferFailed)
    assert ledger.step("bl832/new_file/ds1/copy").state is StepState.FAILED


def test_dependant_of_a_failed_step_does_not_run() -> None:
    """A step whose dependency failed raises without running its work."""
    pipe = make()
    ran: list[str] = []
    with pytest.raises(PipelineError):
        pipe.step("copy", lambda: (_ for _ in ()).throw(TransferFailed("x")))
    with pytest.raises(PipelineError, match="depends on is failed") as info:
        pipe.step("ingest", lambda: ran.append("ingest") or None, depends_on=["copy"])
    assert ran == []
    assert info.value.step == "copy"


def test_failed_and_interrupted_steps_are_redone() -> None:
    """FAILED and STARTED-but-not-DONE steps run again on the next run."""
    ledger = FakeLedger()
    with pytest.raises(PipelineError):
        make(ledger).step("a", lambda: (_ for _ in ()).throw(RuntimeError("bug")))
    # "b" started and the process died before it finished
    ledger.record_step(StepRecord("bl832/new_file/ds1/b", StepState.STARTED, FakeClock().now()))
    pipe = make(ledger)
    pipe.step("a", lambda: None)
    pipe.step("b", lambda: None)
    assert pipe.ran == ["a", "b"]


def test_detail_must_be_strings() -> None:
    """A step detail that is not a mapping of strings fails the step instead of corrupting the ledger."""
    with pytest.raises(PipelineError, match="strings"):
        make().step("a", lambda: {"n": 1})  # type: ignore[dict-item]


@given(st.integers(0, 5), st.integers(1, 5))
def test_rerun_after_failure_runs_each_step_once_to_done(fail_at: int, n_steps: int) -> None:
    """A chain failing at any step, then re-run, ends with every step done and each done step run once."""
    ledger = FakeLedger()
    runs: dict[str, int] = {}

    def work(name: str, fail: bool) -> dict[str, str]:
        runs[name] = runs.get(name, 0) + 1
        if fail:
            raise TransferFailed(f"injected at {name}")
        return {"name": name}

    names = [f"s{i}" for i in range(n_steps)]
    for attempt in range(2):
        pipe = make(ledger)
        try:
            for i, name in enumerate(names):
                pipe.step(
                    name, lambda n=name, f=(attempt == 0 and i == fail_at): work(n, f), depends_on=names[i - 1 : i]
                )
        except PipelineError:
            assert attempt == 0
    assert all(make(ledger).done(n) for n in names)
    assert all(runs[n] == (2 if i == fail_at else 1) for i, n in enumerate(names))
