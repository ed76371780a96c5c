"""Retrying transient errors with bounded backoff through the clock."""

from __future__ import annotations

import random

import pytest

from splash_core.domain.errors import InvalidInput, TransferFailed, TransientTransferError
from splash_core.domain.services.retry import RetryPolicy, call_with_retry
from splash_core.domain.settings import TransferSettings
from tests.fakes import FakeClock


class _Flaky:
    """Fails with the given errors, then returns 'ok'."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_transient_errors_are_retried_with_growing_waits() -> None:
    """Transient failures are retried after exponentially growing, jittered sleeps."""
    clock = FakeClock()
    flaky = _Flaky(TransientTransferError("busy"), TransientTransferError("busy"), TransientTransferError("busy"))
    policy = RetryPolicy(initial_wait_s=1, jitter=0.25)
    assert call_with_retry(flaky, policy=policy, clock=clock, what="t", rng=random.Random(1)) == "ok"
    assert flaky.calls == 4
    for n, slept in enumerate(clock.sleeps):
        assert 2**n <= slept <= 2**n * 1.25


def test_permanent_errors_are_not_retried() -> None:
    """A permanent error propagates at once."""
    clock = FakeClock()
    flaky = _Flaky(TransferFailed("no"))
    with pytest.raises(TransferFailed):
        call_with_retry(flaky, policy=RetryPolicy(), clock=clock, what="t")
    assert (flaky.calls, clock.sleeps) == (1, [])


def test_foreign_errors_are_not_retried() -> None:
    """An error that is not a SplashError propagates at once."""
    flaky = _Flaky(RuntimeError("bug"))
    with pytest.raises(RuntimeError):
        call_with_retry(flaky, policy=RetryPolicy(), clock=FakeClock(), what="t")
    assert flaky.calls == 1


def test_attempts_are_bounded() -> None:
    """After the allowed attempts the last transient error is raised with a note."""
    flaky = _Flaky(*(TransientTransferError("busy") for _ in range(5)))
    with pytest.raises(TransientTransferError) as info:
        call_with_retry(flaky, policy=RetryPolicy(attempts=3), clock=FakeClock(), what="submit x")
    assert flaky.calls == 3
    assert "gave up on submit x after 3 attempt(s)" in "".join(info.value.__notes__)


def test_total_wait_is_bounded() -> None:
    """Retrying stops before the total sleep would exceed the budget."""
    clock = FakeClock()
    flaky = _Flaky(*(TransientTransferError("busy") for _ in range(20)))
    policy = RetryPolicy(attempts=20, initial_wait_s=10, max_total_wait_s=35, jitter=0)
    with pytest.raises(TransientTransferError):
        call_with_retry(flaky, policy=policy, clock=clock, what="t")
    assert clock.slept == 30
    assert flaky.calls == 3


def test_policies_validate_and_come_from_settings() -> None:
    """Zero attempts is refused, and the transfer settings set attempts and budget."""
    with pytest.raises(InvalidInput):
        RetryPolicy(attempts=0)
    policy = RetryPolicy.from_settings(TransferSettings(retry_attempts=7, retry_max_wait_seconds=12))
    assert (policy.attempts, policy.max_total_wait_s) == (7, 12)
    assert RetryPolicy.never().attempts == 1
