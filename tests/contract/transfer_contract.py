"""The contract every :class:`TransferPort` adapter must meet.

Subclass :class:`TransferContract` once per adapter and implement :meth:`TransferContract.make_env`
to return a :class:`TransferEnv`: the port, two endpoints, and ways to put source files, read
destination files and make a task stall. For a service that cannot be run here (Globus),
``put`` and ``stall_next`` register simulated responses instead of writing bytes.
"""

from __future__ import annotations

import abc
import random
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from splash_core.domain.errors import TransferError, TransferTimeout
from splash_core.domain.models import (
    ChecksumAlgorithm,
    Endpoint,
    FileState,
    TaskStatus,
    TransferItem,
    TransferRequest,
)
from splash_core.domain.paths import RelPath
from splash_core.ports.transfer import TransferPort
from tests.fakes import digest

P = RelPath.parse


class TransferEnv(abc.ABC):
    """One adapter's world, as the transfer suite sees it."""

    source: Endpoint
    destination: Endpoint
    timeout_s: float = 30.0
    """How long a wait for a task that should finish may take."""

    @property
    @abc.abstractmethod
    def port(self) -> TransferPort:
        """The adapter under test."""

    @abc.abstractmethod
    def put(self, endpoint: Endpoint, path: str, data: bytes) -> RelPath:
        """Make a file with ``data`` exist at ``path`` on ``endpoint``."""

    @abc.abstractmethod
    def read(self, endpoint: Endpoint, path: str | RelPath) -> bytes:
        """The bytes at ``path`` on ``endpoint``."""

    @abc.abstractmethod
    def files(self, endpoint: Endpoint) -> Mapping[str, bytes]:
        """Every file below the endpoint's root (hidden and temporary ones too), by relative path."""

    @abc.abstractmethod
    def stall_next(self) -> None:
        """Make the next submitted task stay ACTIVE (copying nothing) until cancelled."""

    def close(self) -> None:  # noqa: B027 - most environments have nothing to release
        """Release what the environment holds."""


class TransferContract(abc.ABC):
    """Tests every transfer adapter must pass."""

    @abc.abstractmethod
    def make_env(self, tmp_path: Path) -> TransferEnv:
        """A fresh environment for one test."""

    @pytest.fixture
    def env(self, tmp_path: Path) -> Iterator[TransferEnv]:
        """The environment, closed after the test."""
        env = self.make_env(tmp_path)
        yield env
        env.close()

    @staticmethod
    def request(
        env: TransferEnv,
        pairs: list[tuple[str, str]],
        *,
        key: str = "key-1",
        algorithm: ChecksumAlgorithm = ChecksumAlgorithm.BLAKE3,
    ) -> TransferRequest:
        """A request from ``env.source`` to ``env.destination`` for (source, destination) pairs."""
        items = tuple(TransferItem(P(s), P(d)) for s, d in pairs)
        return TransferRequest(env.source, env.destination, items, "contract test", key, algorithm)

    def test_batch_of_many_files_is_verified(self, env: TransferEnv) -> None:
        """Every file of a large batch arrives intact and is reported VERIFIED with its size."""
        rng = random.Random(832)
        data = {f"scan/sub{i % 7}/frame_{i:04d}.tif": rng.randbytes(rng.randrange(0, 3000)) for i in range(150)}
        data["scan/empty.txt"] = b""
        for path, content in data.items():
            env.put(env.source, path, content)
        request = self.request(env, [(p, "copy/" + p) for p in data])

        task = env.port.submit(request)
        result = env.port.wait(task.task_id, env.timeout_s)

        assert result.ok
        assert result.task_id == task.task_id
        assert env.port.status(task.task_id) is TaskStatus.SUCCEEDED
        assert len(result.files) == len(data)
        for outcome in result.files:
            content = data[outcome.item.source.value]
            assert outcome.state is FileState.VERIFIED
            assert outcome.record is not None
            assert outcome.record.path == outcome.item.destination
            assert outcome.record.size == len(content)
            if outcome.record.checksum is not None:
                assert outcome.record.checksum == digest(content, ChecksumAlgorithm.BLAKE3)
        assert result.bytes_transferred == sum(len(c) for c in data.values())
        assert env.files(env.destination) == {"copy/" + p: c for p, c in data.items()}

    @pytest.mark.parametrize("algorithm", list(ChecksumAlgorithm), ids=lambda a: a.value)
    def test_checksums_use_the_requested_algorithm(self, env: TransferEnv, algorithm: ChecksumAlgorithm) -> None:
        """A checksum reported for a copy matches the bytes, in the request's algorithm (or the service's own)."""
        env.put(env.source, "a.h5", b"hdf5 bytes" * 100)
        task = env.port.submit(self.request(env, [("a.h5", "a.h5")], algorithm=algorithm))
        result = env.port.wait(task.task_id, env.timeout_s)
        (outcome,) = result.files
        assert outcome.record is not None
        if outcome.record.checksum is not None:
            expected = env.port.service_checksum(env.source, env.destination) or algorithm
            assert outcome.record.checksum == digest(b"hdf5 bytes" * 100, expected)
            assert outcome.verified_by

    def test_a_service_comparison_is_announced_and_marked_on_every_file(self, env: TransferEnv) -> None:
        """The algorithm ``service_checksum`` announces is on every VERIFIED outcome, with who verified."""
        announced = env.port.service_checksum(env.source, env.destination)
        for path in ("a.h5", "b.h5"):
            env.put(env.source, path, path.encode() * 10)
        task = env.port.submit(self.request(env, [("a.h5", "a.h5"), ("b.h5", "b.h5")]))
        result = env.port.wait(task.task_id, env.timeout_s)
        assert result.ok
        for outcome in result.files:
            assert outcome.service_algorithm is announced
            if announced is not None:
                assert outcome.verified_by

    def test_resubmitting_the_same_key_returns_the_same_task_and_copies_once(self, env: TransferEnv) -> None:
        """A resubmission under a known idempotency key starts no second copy."""
        env.put(env.source, "raw/a.h5", b"first")
        request = self.request(env, [("raw/a.h5", "raw/a.h5")], key="same-key")
        first = env.port.submit(request)
        again = env.port.submit(request)
        assert again.task_id == first.task_id
        assert env.port.wait(first.task_id, env.timeout_s).ok

        env.put(env.destination, "raw/a.h5", b"changed after the copy")
        third = env.port.submit(request)
        assert third.task_id == first.task_id
        assert env.port.wait(third.task_id, env.timeout_s).ok
        assert env.read(env.destination, "raw/a.h5") == b"changed after the copy"

    def test_a_new_key_is_a_new_task(self, env: TransferEnv) -> None:
        """Different idempotency keys give different tasks."""
        env.put(env.source, "a", b"x")
        one = env.port.submit(self.request(env, [("a", "a")], key="one"))
        two = env.port.submit(self.request(env, [("a", "a")], key="two"))
        assert one.task_id != two.task_id
        assert env.port.wait(one.task_id, env.timeout_s).ok
        assert env.port.wait(two.task_id, env.timeout_s).ok

    def test_an_existing_destination_file_is_replaced(self, env: TransferEnv) -> None:
        """The copy replaces whatever was at the destination path."""
        env.put(env.source, "a.txt", b"new content")
        env.put(env.destination, "a.txt", b"old")
        task = env.port.submit(self.request(env, [("a.txt", "a.txt")]))
        assert env.port.wait(task.task_id, env.timeout_s).ok
        assert env.read(env.destination, "a.txt") == b"new content"

    def test_missing_source_fails_naming_the_path(self, env: TransferEnv) -> None:
        """A batch with a missing source raises an error that names that file."""
        env.put(env.source, "raw/present.h5", b"here")
        request = self.request(env, [("raw/present.h5", "raw/present.h5"), ("raw/missing.h5", "raw/missing.h5")])
        task = env.port.submit(request)
        with pytest.raises(TransferError, match=re.escape("raw/missing.h5")):
            env.port.wait(task.task_id, env.timeout_s)

    def test_wait_never_returns_for_a_failed_task(self, env: TransferEnv) -> None:
        """A failed task is FAILED and every wait on it raises."""
        task = env.port.submit(self.request(env, [("nothing-here", "nothing-here")]))
        for _ in range(2):
            with pytest.raises(TransferError):
                env.port.wait(task.task_id, env.timeout_s)
        assert env.port.status(task.task_id) is TaskStatus.FAILED

    def test_cancel_stops_the_task_and_leaves_nothing_behind(self, env: TransferEnv) -> None:
        """A cancelled task ends CANCELLED, wait raises, and no partial file is left."""
        env.put(env.source, "big.h5", b"b" * 10_000)
        env.stall_next()
        task = env.port.submit(self.request(env, [("big.h5", "big.h5")]))
        env.port.cancel(task.task_id)
        assert env.port.status(task.task_id) is TaskStatus.CANCELLED
        with pytest.raises(TransferError):
            env.port.wait(task.task_id, env.timeout_s)
        assert env.files(env.destination) == {}

    def test_wait_past_the_deadline_cancels_and_raises(self, env: TransferEnv) -> None:
        """A task that does not finish in time is cancelled and TransferTimeout raised."""
        env.put(env.source, "big.h5", b"b" * 10_000)
        env.stall_next()
        task = env.port.submit(self.request(env, [("big.h5", "big.h5")]))
        with pytest.raises(TransferTimeout, match=task.task_id):
            env.port.wait(task.task_id, 0.2)
        assert env.port.status(task.task_id) is TaskStatus.CANCELLED
        assert env.files(env.destination) == {}

    def test_cancelling_a_finished_task_changes_nothing(self, env: TransferEnv) -> None:
        """Cancel after success keeps the task SUCCEEDED and the copy in place."""
        env.put(env.source, "a", b"data")
        task = env.port.submit(self.request(env, [("a", "a")]))
        assert env.port.wait(task.task_id, env.timeout_s).ok
        env.port.cancel(task.task_id)
        assert env.port.status(task.task_id) is TaskStatus.SUCCEEDED
        assert env.read(env.destination, "a") == b"data"

    def test_unknown_task_is_an_error(self, env: TransferEnv) -> None:
        """Asking about a task id nobody issued raises TransferError."""
        with pytest.raises(TransferError):
            env.port.status("no-such-task")
