"""Bounded exponential backoff with jitter for transient errors, sleeping through a ``ClockPort``.

Only :class:`~splash_core.domain.errors.SplashError` with ``transient = True`` is retried;
permanent errors and anything else propagate at once. The number of attempts and the total
time spent sleeping are both bounded, and every sleep goes through the clock, so a fake clock
makes retries instant in tests.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import attrs

from splash_core.domain.errors import InvalidInput, SplashError

if TYPE_CHECKING:
    from splash_core.domain.settings import TransferSettings
    from splash_core.ports.clock import ClockPort

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _positive_attempts(_instance: object, _attribute: object, value: int) -> None:
    if value < 1:
        raise InvalidInput(f"retry attempts must be >= 1, got {value}")


@attrs.frozen
class RetryPolicy:
    """How often and how patiently to retry a transient failure.

    The n-th wait is ``initial_wait_s * multiplier**(n-1)``, capped at ``max_wait_s``, plus up
    to ``jitter`` of itself at random. No more than ``attempts`` calls are made, and no more
    than ``max_total_wait_s`` is spent sleeping (the last error is raised instead).
    """

    attempts: int = attrs.field(default=5, validator=_positive_attempts)
    initial_wait_s: float = 1.0
    max_wait_s: float = 60.0
    max_total_wait_s: float = 300.0
    multiplier: float = 2.0
    jitter: float = 0.25

    @classmethod
    def from_settings(cls, settings: TransferSettings) -> RetryPolicy:
        """The policy the ``transfer`` settings ask for."""
        return cls(attempts=settings.retry_attempts, max_total_wait_s=settings.retry_max_wait_seconds)

    @classmethod
    def never(cls) -> RetryPolicy:
        """One attempt: fail on the first error."""
        return cls(attempts=1)

    def wait_before(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        base = min(self.max_wait_s, self.initial_wait_s * self.multiplier ** (retry - 1))
        return base + base * self.jitter * rng.random()


def call_with_retry(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    clock: ClockPort,
    what: str,
    rng: random.Random | None = None,
) -> T:
    """Call ``fn``, retrying it after transient errors as ``policy`` allows.

    Args:
        fn: the call; must be safe to repeat.
        policy: attempts and waits.
        clock: sleeps go through it.
        what: names the call in log messages (e.g. ``"submit spot832 -> data832 batch 1/3"``).
        rng: source of jitter (a fresh one by default).

    Raises:
        SplashError: the first permanent error, or the last transient one once attempts or
            the total wait are used up (with a note saying how many attempts were made).
    """
    waited = 0.0
    attempt = 1
    while True:
        try:
            return fn()
        except SplashError as exc:
            if not exc.transient:
                raise
            # made only when needed: seeding a Random per call cost ~20% of per-file overhead
            rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
            delay = policy.wait_before(attempt, rng)
            if attempt >= policy.attempts or waited + delay > policy.max_total_wait_s:
                exc.add_note(f"gave up on {what} after {attempt} attempt(s) and {waited:.1f} s of waiting")
                logger.error("%s failed %d time(s); giving up: %s", what, attempt, exc)
                raise
            logger.warning("%s failed (%s); retry %d in %.1f s", what, exc, attempt, delay)
            clock.sleep(delay)
            waited += delay
            attempt += 1


__all__ = ["RetryPolicy", "call_with_retry"]
