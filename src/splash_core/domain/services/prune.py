"""Deleting files whose retention has ended, only where a verified, still-matching copy exists.

Scheduled prunes live in the ledger (not in an orchestrator's database). A due prune deletes
``path`` on its endpoint only when all of these hold, checked fresh at the time:

1. the ledger holds a verified copy at the policy's check endpoint;
2. that copy still exists with the recorded size and checksum (recomputed now, in the
   recorded algorithm);
3. the file to delete still resolves inside its endpoint's root;
4. the file to delete has the same size and checksum (so the copy is of *this* version).

A copy recorded without a digest (a transfer service such as Globus compared checksums
but reported none) is re-verified by computing fresh checksums of the copy and of the file
to delete, in an algorithm both endpoints' storage offers, and comparing them. When the
storage cannot checksum both (Globus collections offer no checksums) the prune is refused:
a size alone never justifies a deletion. Prune then has to run where the files are
mounted, with a checksum-capable storage adapter. When such fresh checksums differ, the
copy is *not* forgotten: with no digest recorded splash cannot tell which side changed,
and copying the file again could overwrite the good copy with a damaged source.

Each deletion is recorded (``PruneDone`` with ``LocationRemoved``, in one durable ledger write)
as soon as it is made, before the next file is touched.

Otherwise the prune is refused: the file stays, a ``PruneRefused`` names what is wrong, and
the prune stays pending so the next run tries again. A problem with one file never stops
the others. When the copy itself is gone or changed, a ``LocationRemoved`` for it is
recorded too, so the ledger stops counting it and the next move (or reconcile) copies the
file again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

import attrs

from splash_core.domain.errors import InvalidInput, LedgerError, SplashError, UnknownEndpoint
from splash_core.domain.events import (
    LocationRemoved,
    LocationVerified,
    PruneDone,
    PruneRefused,
    PruneScheduled,
)
from splash_core.domain.models import Checksum, ChecksumAlgorithm, Endpoint, RetentionPolicy
from splash_core.domain.paths import RelPath
from splash_core.domain.services.retry import RetryPolicy, call_with_retry

if TYPE_CHECKING:
    from splash_core.ports.clock import ClockPort
    from splash_core.ports.ledger import LedgerPort
    from splash_core.ports.storage import StoragePort

logger = logging.getLogger(__name__)

T = TypeVar("T")


@attrs.frozen
class PruneReport:
    """What one run of due prunes did (or, in a dry run, would do).

    ``deleted`` are the deletions made; ``would_delete`` the prunes a dry run found ready;
    ``already_gone`` prunes whose file had disappeared while its copy is verified (marked
    done); ``refused`` every prune that was not carried out, with its reason.
    """

    at: datetime
    dry_run: bool
    deleted: tuple[PruneDone, ...] = ()
    would_delete: tuple[PruneScheduled, ...] = ()
    already_gone: tuple[PruneScheduled, ...] = ()
    refused: tuple[PruneRefused, ...] = ()

    @property
    def checked(self) -> int:
        """How many due prunes were looked at."""
        return len(self.deleted) + len(self.would_delete) + len(self.already_gone) + len(self.refused)


class _Refused(Exception):  # internal control flow; never escapes this module
    def __init__(self, reason: str, stale_copy: tuple[str, RelPath] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stale_copy = stale_copy


class _Gone(Exception):  # internal control flow; never escapes this module
    def __init__(self, copy: LocationVerified, checksum: Checksum) -> None:
        super().__init__("already gone")
        self.copy = copy
        self.checksum = checksum


@attrs.frozen
class _Checked:
    """A copy that passed the checks, with its checksum computed just now."""

    copy: LocationVerified
    checksum: Checksum


class PruneService:
    """Schedule prunes in the ledger and carry out the due ones safely.

    Args:
        storage: stats, checksums and deletes files.
        ledger: holds scheduled prunes and verified copies, and records outcomes.
        clock: decides what is due and stamps events.
        endpoints: every endpoint a prune may name, by name.
        retry: how transient storage errors are retried within one run.
    """

    def __init__(
        self,
        storage: StoragePort,
        ledger: LedgerPort,
        clock: ClockPort,
        endpoints: Mapping[str, Endpoint],
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._storage = storage
        self._ledger = ledger
        self._clock = clock
        self._endpoints = dict(endpoints)
        self.retry = retry or RetryPolicy(attempts=3, max_total_wait_s=60.0)

    def schedule(
        self,
        endpoint: Endpoint | str,
        paths: Sequence[RelPath],
        policy: RetentionPolicy,
        *,
        check_prefix: RelPath | None = None,
    ) -> list[PruneScheduled]:
        """Schedule each file of ``paths`` on ``endpoint`` to go after ``policy.days``.

        A file already pending on that endpoint is not scheduled again. Nothing is read from
        storage; the checks happen when the prune is due.

        Args:
            endpoint: where the files will be deleted (must be ``policy.endpoint``).
            paths: files relative to the endpoint root.
            policy: retention days and the endpoint that must hold a verified copy.
            check_prefix: the copies are below this folder on the check endpoint (same
                relative path when None).

        Returns:
            The prunes scheduled now (not those already pending).

        Raises:
            InvalidInput: the policy is for another endpoint or checks the endpoint itself.
            UnknownEndpoint: the endpoint or the check endpoint is not configured.
        """
        name = endpoint if isinstance(endpoint, str) else endpoint.name
        if policy.endpoint != name:
            raise InvalidInput(f"retention policy for {policy.endpoint} cannot schedule prunes on {name}")
        if policy.check_endpoint == name:
            raise InvalidInput(f"retention policy for {name} must check a copy on another endpoint, not {name} itself")
        for needed in (name, policy.check_endpoint):
            if needed not in self._endpoints:
                raise UnknownEndpoint(f"endpoint {needed!r} (retention policy for {name}) is not configured")
        now = self._clock.now()
        due = now + timedelta(days=policy.days)
        pending = {(p.endpoint, p.path) for p in self._ledger.pending_prunes()}
        scheduled: list[PruneScheduled] = []
        for path in dict.fromkeys(paths):
            if (name, path) in pending:
                continue
            check_path = check_prefix.join(path.value) if check_prefix is not None else None
            event = PruneScheduled(name, path, due, policy.check_endpoint, now, check_path)
            self._ledger.record(event)
            pending.add((name, path))
            scheduled.append(event)
        if scheduled:
            logger.info(
                "scheduled %d prune(s) on %s from %s (checked against %s)",
                len(scheduled),
                name,
                due.isoformat(),
                policy.check_endpoint,
            )
        return scheduled

    def run_due(self, *, at: datetime | None = None, dry_run: bool = False) -> PruneReport:
        """Carry out (or, with ``dry_run``, only assess) every prune due at ``at`` (default now).

        A dry run deletes nothing and records nothing. Never raises for a single file: each
        problem becomes a refusal in the report (and, unless dry, in the ledger).
        """
        when = at or self._clock.now()
        deleted: list[PruneDone] = []
        ready: list[PruneScheduled] = []
        gone: list[PruneScheduled] = []
        refused: list[PruneRefused] = []
        for prune in self._ledger.pending_prunes(due_before=when):
            try:
                checked = self._check(prune)
                if dry_run:
                    ready.append(prune)
                else:
                    deleted.append(self._delete(prune, checked))
            except _Gone as exc:
                try:
                    if not dry_run:
                        self._record_gone(prune, exc.copy, exc.checksum)
                    gone.append(prune)
                except Exception as record_exc:  # recording failed: keep it pending, never raise for one file
                    reason = f"{prune.path} on {prune.endpoint} is gone but could not be recorded: {record_exc}"
                    refused.append(self._refuse(prune, reason, record=False))
            except _Refused as exc:
                refused.append(self._refuse(prune, exc.reason, record=not dry_run))
                if exc.stale_copy is not None and not dry_run:
                    self._forget_copy(*exc.stale_copy)
            except Exception as exc:  # one file's trouble must not stop the others; keeping it is safe
                reason = f"{prune.path} on {prune.endpoint} was kept: {type(exc).__name__}: {exc}"
                refused.append(self._refuse(prune, reason, record=not dry_run))
        report = PruneReport(when, dry_run, tuple(deleted), tuple(ready), tuple(gone), tuple(refused))
        logger.info(
            "prune run at %s%s: %d deleted, %d ready, %d already gone, %d refused",
            when.isoformat(),
            " (dry run)" if dry_run else "",
            len(deleted),
            len(ready),
            len(gone),
            len(refused),
        )
        return report

    # --- checks ------------------------------------------------------------

    def _check(self, prune: PruneScheduled) -> _Checked:
        endpoint = self._endpoint(prune.endpoint, prune)
        check = self._endpoint(prune.check_endpoint, prune)
        path, copy_path = prune.path, prune.copy_path
        here = f"{path} on {endpoint.name}"
        there = f"{copy_path} on {check.name}"
        copy = self._ledger.verified_copy(check.name, copy_path)
        if copy is None:
            raise _Refused(f"{here} was kept: the ledger has no verified copy of {there}; move it there first")
        copy_now = self._call(lambda: self._storage.stat(check, copy_path), f"stat {there}")
        stale = (check.name, copy_path)
        if copy_now is None:
            raise _Refused(f"{here} was kept: its verified copy {there} no longer exists; copy it again", stale)
        if copy_now.size != copy.size:
            raise _Refused(
                f"{here} was kept: its copy {there} is {copy_now.size} bytes now but {copy.size} when verified; "
                "copy it again",
                stale,
            )
        algorithm = copy.checksum.algorithm if copy.checksum is not None else self._fresh_algorithm(prune, copy)
        copy_sum = self._call(lambda: self._storage.checksum(check, copy_path, algorithm), f"checksum {there}")
        if copy.checksum is not None and copy_sum != copy.checksum:
            raise _Refused(
                f"{here} was kept: its copy {there} no longer matches its verified checksum "
                f"({copy.checksum} when verified, {copy_sum} now); copy it again",
                stale,
            )
        if not self._call(lambda: self._storage.contains(endpoint, path), f"resolve {here}"):
            raise _Refused(
                f"{here} was kept: it resolves outside the root {endpoint.root_path} (a symlink?); "
                "remove the link by hand if it should go"
            )
        local = self._call(lambda: self._storage.stat(endpoint, path), f"stat {here}")
        if local is None:
            if self._call(lambda: next(iter(self._storage.list(endpoint, path)), None), f"list {here}") is not None:
                raise _Refused(f"{here} was kept: it is a folder; prunes delete single files, schedule those")
            raise _Gone(copy, copy_sum)
        if local.size != copy.size:
            raise _Refused(
                f"{here} was kept: it is {local.size} bytes but the verified copy {there} is {copy.size}; "
                "the copy is of another version, move the file again"
            )
        local_sum = self._call(lambda: self._storage.checksum(endpoint, path, algorithm), f"checksum {here}")
        if copy.checksum is None and local_sum != copy_sum:
            raise _Refused(
                f"{here} was kept: its checksum {local_sum} differs from that of its copy {there} ({copy_sum}), "
                f"which was verified by {copy.verification}; with no digest recorded splash cannot tell which "
                "of them changed since. Compare them by hand, then move the file again if the source is right"
            )
        if local_sum != copy_sum:
            raise _Refused(
                f"{here} was kept: its checksum {local_sum} differs from the verified copy {there} "
                f"({copy.checksum}); the copy is of another version, move the file again"
            )
        return _Checked(copy, copy_sum)

    def _fresh_algorithm(self, prune: PruneScheduled, copy: LocationVerified) -> ChecksumAlgorithm:
        """An algorithm the storage can compute on both ends, for a copy recorded without a digest.

        The service's own algorithm is preferred when both ends offer it.
        """
        endpoint, check = self._endpoints[prune.endpoint], self._endpoints[prune.check_endpoint]
        here, there = f"{prune.path} on {endpoint.name}", f"{prune.copy_path} on {check.name}"
        at_check = self._storage.checksum_algorithms(check)
        if not at_check:
            raise _Refused(
                f"{here} was kept: its copy {there} was verified by {copy.verification} but splash cannot "
                f"re-verify it now: endpoint {check.name} offers no checksums. Run prune where the files are "
                "mounted, or configure a checksum-capable storage adapter"
            )
        at_here = self._storage.checksum_algorithms(endpoint)
        preferred = [copy.service_algorithm] if copy.service_algorithm is not None else []
        for algorithm in (*preferred, *at_check):
            if algorithm in at_check and algorithm in at_here:
                return algorithm
        raise _Refused(
            f"{here} was kept: its copy {there} was verified by {copy.verification} but splash cannot "
            f"re-verify it now: {endpoint.name} ({', '.join(a.value for a in at_here) or 'none'}) and {check.name} "
            f"({', '.join(a.value for a in at_check)}) share no checksum algorithm to compare them in. Run prune "
            "where the files are mounted, or configure a checksum-capable storage adapter"
        )

    def _endpoint(self, name: str, prune: PruneScheduled) -> Endpoint:
        endpoint = self._endpoints.get(name)
        if endpoint is None:
            raise _Refused(
                f"{prune.path} on {prune.endpoint} was kept: endpoint {name!r} is not configured; "
                "add it to the configuration"
            )
        return endpoint

    # --- outcomes ----------------------------------------------------------

    def _delete(self, prune: PruneScheduled, checked: _Checked) -> PruneDone:
        endpoint, copy = self._endpoints[prune.endpoint], checked.copy
        self._call(lambda: self._storage.delete(endpoint, prune.path), f"delete {prune.path} on {endpoint.name}")
        now = self._clock.now()
        done = PruneDone(prune.endpoint, prune.path, copy.endpoint, checked.checksum, now)
        try:
            # both or neither, in one durable write, before the next file is touched
            self._ledger.record_many((done, LocationRemoved(prune.endpoint, prune.path, now)))
        except LedgerError as exc:
            # repaired next run: the file is gone and the copy verified, so the prune is marked done
            logger.error("pruned %s on %s but could not record it: %s", prune.path, prune.endpoint, exc)
        logger.info("pruned %s on %s (verified copy on %s)", prune.path, prune.endpoint, copy.endpoint)
        return done

    def _record_gone(self, prune: PruneScheduled, copy: LocationVerified, checksum: Checksum) -> None:
        logger.warning(
            "%s on %s was already gone; its copy on %s is verified, so the prune is marked done",
            prune.path,
            prune.endpoint,
            copy.endpoint,
        )
        now = self._clock.now()
        self._ledger.record_many(
            (
                PruneDone(prune.endpoint, prune.path, copy.endpoint, checksum, now),
                LocationRemoved(prune.endpoint, prune.path, now),
            )
        )

    def _forget_copy(self, endpoint: str, path: RelPath) -> None:
        # the verified bytes are no longer there: say so, so moves and reconcile copy the file again
        logger.warning("verified copy of %s on %s is gone or changed; the ledger stops counting it", path, endpoint)
        try:
            self._ledger.record(LocationRemoved(endpoint, path, self._clock.now()))
        except LedgerError as exc:
            logger.error("could not record that %s on %s changed: %s", path, endpoint, exc)

    def _refuse(self, prune: PruneScheduled, reason: str, *, record: bool) -> PruneRefused:
        refusal = PruneRefused(prune.endpoint, prune.path, reason, self._clock.now())
        logger.warning("prune refused: %s", reason)
        if record:
            try:
                self._ledger.record(refusal)
            except LedgerError as exc:  # the prune stays pending either way
                logger.error("could not record the refusal of %s on %s: %s", prune.path, prune.endpoint, exc)
        return refusal

    def _call(self, fn: Callable[[], T], what: str) -> T:
        try:
            return call_with_retry(fn, policy=self.retry, clock=self._clock, what=what)
        except SplashError as exc:
            raise _Refused(f"could not {what}: {exc}") from exc


__all__ = ["PruneReport", "PruneService"]
