"""GlobusTransfer against a simulated Globus service and registered responses."""

from __future__ import annotations

import json
import uuid
from typing import Any

import globus_sdk
import pytest
import responses
from globus_sdk.testing import load_response

from splash_core.adapters.globus import GlobusTransfer, sanitize_label, submission_id_for
from splash_core.domain.errors import (
    CredentialsError,
    InvalidInput,
    PermissionDenied,
    QuotaExceeded,
    SourceNotFound,
    TransferError,
    TransferFailed,
    TransferTimeout,
    TransientTransferError,
    VerificationFailed,
)
from splash_core.domain.models import Endpoint, FileState, TaskStatus, TransferItem, TransferRequest
from splash_core.domain.paths import RelPath
from tests.fakes.clock import FakeClock
from tests.unit.adapters.globus.conftest import COLL_A
from tests.unit.adapters.globus.simulated import BASE, SimulatedGlobus


def _request(source: Endpoint, destination: Endpoint, *names: str, key: str = "batch-1") -> TransferRequest:
    items = tuple(TransferItem(RelPath.parse(n), RelPath.parse(n)) for n in names)
    return TransferRequest(source, destination, items, label="8.3.2 new_file scan", idempotency_key=key)


def _bodies(mock: responses.RequestsMock, suffix: str) -> list[dict[str, Any]]:
    bodies = []
    for call in mock.calls:
        if call.request.method == "POST" and (call.request.url or "").endswith(suffix):
            body = call.request.body
            assert isinstance(body, bytes | str)
            bodies.append(json.loads(body))
    return bodies


def _task_doc(task_id: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "DATA_TYPE": "task",
        "task_id": task_id,
        "type": "TRANSFER",
        "status": status,
        "faults": 0,
        "nice_status": "OK" if status == "ACTIVE" else None,
        "files_skipped": 0,
        "bytes_transferred": 0,
        "fatal_error": None,
        "request_time": "2026-01-01 00:00:00+00:00",
        "completion_time": None,
        **extra,
    }


# --- the happy path, through the simulated service ---------------------------


def test_a_batch_moves_as_one_task_and_every_file_is_verified_by_globus(
    sim: SimulatedGlobus, transfer: GlobusTransfer, source: Endpoint, destination: Endpoint
) -> None:
    """Three files go in one checksum-synced task and come back VERIFIED with their sizes."""
    for name, data in (("a/1.h5", b"one"), ("a/2.h5", b"three"), ("b/3.h5", b"xx")):
        sim.put(COLL_A, f"/data/raw/{name}", data)
    request = _request(source, destination, "a/1.h5", "a/2.h5", "b/3.h5")

    task = transfer.submit(request)
    result = transfer.wait(task.task_id, timeout_s=60)

    assert len(sim.tasks) == 1
    assert result.ok
    assert result.bytes_transferred == 10
    assert result.seconds == 10.0
    assert {o.item.destination.value: o.record.size for o in result.files if o.record} == {
        "a/1.h5": 3,
        "a/2.h5": 5,
        "b/3.h5": 2,
    }
    assert all(o.verified_by == "globus" and o.record and o.record.checksum is None for o in result.files)
    assert sim.read_at(destination, RelPath("a/2.h5")) == b"three"


def test_the_task_asks_globus_to_verify_checksums_and_uses_full_paths(
    mock: responses.RequestsMock,
    sim: SimulatedGlobus,
    transfer: GlobusTransfer,
    source: Endpoint,
    destination: Endpoint,
) -> None:
    """The submitted document syncs by checksum, verifies, fails on quota and maps paths under the roots."""
    sim.put(COLL_A, "/data/raw/x.h5", b"x")

    transfer.submit(_request(source, destination, "x.h5"))

    (body,) = _bodies(mock, "/v0.10/transfer")
    assert body["sync_level"] == 3
    assert body["verify_checksum"] is True
    assert body["fail_on_quota_errors"] is True
    assert body["source_endpoint"] == source.collection_id
    assert body["destination_endpoint"] == destination.collection_id
    assert body["DATA"][0]["source_path"] == "/data/raw/x.h5"
    assert body["DATA"][0]["destination_path"] == "/global/cfs/raw/x.h5"
    assert body["submission_id"] == submission_id_for("batch-1")
    assert ("GET", "/v0.10/submission_id") not in sim.calls


def test_files_already_in_sync_count_as_verified(
    sim: SimulatedGlobus, transfer: GlobusTransfer, source: Endpoint, destination: Endpoint
) -> None:
    """A file Globus skipped because the destination checksum matched is still VERIFIED."""
    sim.put_at(source, RelPath("same.h5"), b"same")
    sim.put_at(destination, RelPath("same.h5"), b"same")
    sim.put_at(source, RelPath("new.h5"), b"new")

    task = transfer.submit(_request(source, destination, "same.h5", "new.h5"))
    result = transfer.wait(task.task_id, timeout_s=60)

    assert result.ok
    assert [o.state for o in result.files] == [FileState.VERIFIED, FileState.VERIFIED]


def test_wait_polls_with_growing_intervals_until_the_task_ends(
    sim: SimulatedGlobus, transfer: GlobusTransfer, clock: FakeClock, source: Endpoint, destination: Endpoint
) -> None:
    """A task that stays ACTIVE for four polls is waited for with backoff through the clock."""
    sim.polls_until_done = 4
    sim.put(COLL_A, "/data/raw/x.h5", b"x")

    task = transfer.submit(_request(source, destination, "x.h5"))
    assert transfer.status(task.task_id) is TaskStatus.ACTIVE
    result = transfer.wait(task.task_id, timeout_s=600)

    assert result.ok
    assert clock.sleeps == [1.0, 2.0, 4.0]


# --- idempotency ----------------------------------------------------------------


def test_submission_ids_are_deterministic_uuids_of_the_key() -> None:
    """The same key always gives the same UUID; another key or attempt gives another."""
    first = submission_id_for("dataset-abc:spot832->data832")
    assert first == submission_id_for("dataset-abc:spot832->data832")
    assert uuid.UUID(first).version == 5
    assert first != submission_id_for("dataset-abd:spot832->data832")
    assert first != submission_id_for("dataset-abc:spot832->data832", attempt=1)


def test_resubmitting_the_same_request_returns_the_same_task(
    sim: SimulatedGlobus, transfer: GlobusTransfer, source: Endpoint, destination: Endpoint
) -> None:
    """Globus deduplicates on the submission id, so a second submit starts nothing new."""
    sim.put(COLL_A, "/data/raw/x.h5", b"x")
    request = _request(source, destination, "x.h5")

    first = transfer.submit(request)
    second = transfer.submit(request)

    assert first.task_id == second.task_id
    assert len(sim.tasks) == 1


def test_a_fresh_adapter_can_wait_on_a_resubmitted_request(
    sim: SimulatedGlobus, transfer: GlobusTransfer, clock: FakeClock, source: Endpoint, destination: Endpoint
) -> None:
    """After a restart, submitting the same request again finds the running task to wait on."""
    sim.put(COLL_A, "/data/raw/x.h5", b"x")
    request = _request(source, destination, "x.h5")
    task = transfer.submit(request)
    restarted = GlobusTransfer(globus_sdk.TransferClient(), clock=clock)

    with pytest.raises(TransferError, match=task.task_id):
        restarted.wait(task.task_id, timeout_s=10)
    again = restarted.submit(request)

    assert again.task_id == task.task_id
    assert restarted.wait(again.task_id, timeout_s=10).ok


def test_a_failed_task_can_be_resubmitted_under_the_same_key(
    mock: responses.RequestsMock,
    sim: SimulatedGlobus,
    transfer: GlobusTransfer,
    source: Endpoint,
    destination: Endpoint,
) -> None:
    """When the task behind a key FAILED, the next submit starts a new task with the next submission id."""
    sim.put(COLL_A, "/data/raw/x.h5", b"x")
    sim.next_task_fails_with = "ENDPOINT_ERROR"
    request = _request(source, destination, "x.h5")
    failed = transfer.submit(request)
    with pytest.raises(TransferFailed):
        transfer.wait(failed.task_id, timeout_s=10)

    retried = transfer.submit(request)

    assert retried.task_id != failed.task_id
    assert _bodies(mock, "/v0.10/transfer")[-1]["submission_id"] == submission_id_for("batch-1", attempt=1)
    assert transfer.wait(retried.task_id, timeout_s=10).ok


# --- labels and input -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("8.3.2 new_file scan", "8_3_2 new_file scan"),
        ("  spot832 → data832\n(raw)  ", "spot832 _ data832 _raw_"),
        ("", "splash transfer"),
        ("\n\t", "splash transfer"),
        ("x" * 300, "x" * 128),
    ],
)
def test_labels_are_sanitised_to_what_globus_accepts(raw: str, expected: str) -> None:
    """Only letters, digits, space, '-', '_' and ',' survive, at most 128 of them."""
    assert sanitize_label(raw) == expected


def test_the_task_label_is_the_sanitised_request_label(
    mock: responses.RequestsMock,
    sim: SimulatedGlobus,
    transfer: GlobusTransfer,
    source: Endpoint,
    destination: Endpoint,
) -> None:
    """The label sent to Globus names the request."""
    sim.put(COLL_A, "/data/raw/x.h5", b"x")
    transfer.submit(_request(source, destination, "x.h5"))
    assert _bodies(mock, "/v0.10/transfer")[0]["label"] == "8_3_2 new_file scan"


def test_an_endpoint_without_a_collection_is_refused(transfer: GlobusTransfer, source: Endpoint) -> None:
    """Nothing is submitted when an endpoint has no Globus collection id."""
    bare = Endpoint("scratch", "als", "/scratch", source.site)
    with pytest.raises(InvalidInput, match="scratch has no Globus collection id"):
        transfer.submit(_request(source, bare, "x.h5"))


def test_an_empty_idempotency_key_is_refused(transfer: GlobusTransfer, source: Endpoint, destination: Endpoint) -> None:
    """Without a key a resubmission could duplicate the task, so nothing is submitted."""
    with pytest.raises(InvalidInput, match="idempotency key"):
        transfer.submit(_request(source, destination, "x.h5", key=""))


# --- failures ---------------------------------------------------------------------


def test_a_failed_task_raises_with_its_id_and_reason(
    mock: responses.RequestsMock, transfer: GlobusTransfer, source: Endpoint, destination: Endpoint
) -> None:
    """A task that ends FAILED is never reported as a success."""
    submitted = load_response("transfer.submit_transfer", requests_mock=mock)
    task_id = submitted.metadata["task_id"]
    mock.add(
        "GET",
        f"{BASE}/task/{task_id}",
        json=_task_doc(task_id, "FAILED", fatal_error={"code": "ENDPOINT_ERROR", "description": "disk on fire"}),
    )
    task = transfer.submit(_request(source, destination, "x.h5"))

    with pytest.raises(TransferFailed, match=f"{task_id}.*ENDPOINT_ERROR: disk on fire"):
        transfer.wait(task.task_id, timeout_s=60)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("FILE_NOT_FOUND", SourceNotFound),
        ("PERMISSION_DENIED", PermissionDenied),
        ("QUOTA_EXCEEDED", QuotaExceeded),
        ("VERIFY_CHECKSUM", VerificationFailed),
    ],
)
def test_a_failed_task_maps_its_fatal_error(
    mock: responses.RequestsMock,
    transfer: GlobusTransfer,
    source: Endpoint,
    destination: Endpoint,
    code: str,
    error: type[Exception],
) -> None:
    """The fatal error code of a FAILED task picks the splash error."""
    task_id = load_response("transfer.submit_transfer", requests_mock=mock).metadata["task_id"]
    mock.add("GET", f"{BASE}/task/{task_id}", json=_task_doc(task_id, "FAILED", fatal_error={"code": code}))
    task = transfer.submit(_request(source, destination, "x.h5"))

    with pytest.raises(error, match=task_id):
        transfer.wait(task.task_id, timeout_s=60)


def test_success_with_a_file_missing_from_the_successful_transfers_raises(
    sim: SimulatedGlobus, transfer: GlobusTransfer, source: Endpoint, destination: Endpoint
) -> None:
    """SUCCEEDED is not enough: every file of the batch must be among the successful transfers."""
    for name in ("1.h5", "2.h5", "3.h5"):
        sim.put(COLL_A, f"/data/raw/{name}", b"data")
    sim.next_task_omits = frozenset({"/global/cfs/raw/2.h5"})
    task = transfer.submit(_request(source, destination, "1.h5", "2.h5", "3.h5"))

    with pytest.raises(TransferFailed, match=rf"{task.task_id}.*SUCCEEDED but 1 of 3 files.*2\.h5"):
        transfer.wait(task.task_id, timeout_s=60)


def test_success_without_the_file_at_the_destination_raises(
    mock: responses.RequestsMock, transfer: GlobusTransfer, source: Endpoint, destination: Endpoint
) -> None:
    """A file listed as transferred but absent from the destination listing fails the batch."""
    task_id = load_response("transfer.submit_transfer", requests_mock=mock).metadata["task_id"]
    mock.add("GET", f"{BASE}/task/{task_id}", json=_task_doc(task_id, "SUCCEEDED"))
    mock.add(
        "GET",
        f"{BASE}/task/{task_id}/successful_transfers",
        json={"DATA": [{"source_path": "/data/raw/x.h5", "destination_path": "/global/cfs/raw/x.h5"}]},
    )
    mock.add("GET", f"{BASE}/operation/endpoint/{destination.collection_id}/ls", json={"DATA": []})
    task = transfer.submit(_request(source, destination, "x.h5"))

    with pytest.raises(TransferFailed, match="did not arrive"):
        transfer.wait(task.task_id, timeout_s=60)


@pytest.mark.parametrize(
    ("code", "error"),
    [("PERMISSION_DENIED", PermissionDenied), ("QUOTA_EXCEEDED", QuotaExceeded), ("NO_SPACE_LEFT", QuotaExceeded)],
)
def test_a_fatal_event_while_active_cancels_and_raises(
    sim: SimulatedGlobus,
    transfer: GlobusTransfer,
    source: Endpoint,
    destination: Endpoint,
    code: str,
    error: type[Exception],
) -> None:
    """Globus would retry forever; the adapter cancels the task and raises at once."""
    sim.put(COLL_A, "/data/raw/x.h5", b"x")
    sim.next_task_stalls_with = code
    task = transfer.submit(_request(source, destination, "x.h5"))

    with pytest.raises(error, match=rf"{task.task_id}.*{code}.*cancelled"):
        transfer.wait(task.task_id, timeout_s=3600)

    assert sim.cancelled == [task.task_id]
    assert transfer.status(task.task_id) is TaskStatus.FAILED
    with pytest.raises(error, match=code):
        transfer.wait(task.task_id, timeout_s=3600)


def test_a_missing_source_file_cancels_and_raises_source_not_found(
    sim: SimulatedGlobus, transfer: GlobusTransfer, source: Endpoint, destination: Endpoint
) -> None:
    """A source file that does not exist stalls the task at Globus; the adapter gives up on it."""
    task = transfer.submit(_request(source, destination, "never-written.h5"))

    with pytest.raises(SourceNotFound, match=task.task_id):
        transfer.wait(task.task_id, timeout_s=3600)
    assert sim.cancelled == [task.task_id]


def _active_with_events(mock: responses.RequestsMock, task_id: str, events: list[dict[str, Any]]) -> None:
    mock.add("GET", f"{BASE}/task/{task_id}", json=_task_doc(task_id, "ACTIVE", faults=len(events)))
    mock.add("GET", f"{BASE}/task/{task_id}/event_list", json={"DATA": events})
    mock.add("POST", f"{BASE}/task/{task_id}/cancel", json={"code": "Canceled"})


def test_repeated_checksum_mismatches_cancel_and_raise(
    mock: responses.RequestsMock, transfer: GlobusTransfer, source: Endpoint, destination: Endpoint
) -> None:
    """Three VERIFY_CHECKSUM events mean the copy will not verify: cancel and raise."""
    task_id = load_response("transfer.submit_transfer", requests_mock=mock).metadata["task_id"]
    event = {"code": "VERIFY_CHECKSUM", "is_error": True, "description": "checksum verification failed"}
    _active_with_events(mock, task_id, [event] * 3)
    task = transfer.submit(_request(source, destination, "x.h5"))

    with pytest.raises(VerificationFailed, match=rf"{task_id}.*3 times"):
        transfer.wait(task.task_id, timeout_s=60)
    assert any((c.request.url or "").endswith(f"/task/{task_id}/cancel") for c in mock.calls)


def test_a_single_checksum_mismatch_is_left_to_globus_to_retry(
    mock: responses.RequestsMock, transfer: GlobusTransfer, clock: FakeClock, source: Endpoint, destination: Endpoint
) -> None:
    """One mismatch is retried by Globus; the adapter keeps waiting (here until its deadline)."""
    task_id = load_response("transfer.submit_transfer", requests_mock=mock).metadata["task_id"]
    _active_with_events(mock, task_id, [{"code": "VERIFY_CHECKSUM", "is_error": True}])
    task = transfer.submit(_request(source, destination, "x.h5"))

    with pytest.raises(TransferTimeout):
        transfer.wait(task.task_id, timeout_s=20)
    assert clock.slept == 20


def test_the_deadline_cancels_the_task_and_raises_timeout(
    mock: responses.RequestsMock, transfer: GlobusTransfer, clock: FakeClock, source: Endpoint, destination: Endpoint
) -> None:
    """A task still ACTIVE at the deadline is cancelled; the error names it and the timeout."""
    task_id = load_response("transfer.submit_transfer", requests_mock=mock).metadata["task_id"]
    mock.add("GET", f"{BASE}/task/{task_id}", json=_task_doc(task_id, "ACTIVE"))
    mock.add("POST", f"{BASE}/task/{task_id}/cancel", json={"code": "Canceled"})
    task = transfer.submit(_request(source, destination, "x.h5"))

    with pytest.raises(TransferTimeout, match=rf"{task_id}.*within 30 s.*cancelled"):
        transfer.wait(task.task_id, timeout_s=30)

    cancels = [c for c in mock.calls if (c.request.url or "").endswith(f"/task/{task_id}/cancel")]
    assert len(cancels) == 1
    assert clock.slept == 30


def test_a_task_that_finishes_as_the_deadline_passes_is_a_success(
    sim: SimulatedGlobus, transfer: GlobusTransfer, source: Endpoint, destination: Endpoint
) -> None:
    """If the cancel finds the task already done, its result is returned rather than a timeout."""
    sim.polls_until_done = 1
    sim.put(COLL_A, "/data/raw/x.h5", b"x")
    task = transfer.submit(_request(source, destination, "x.h5"))

    assert transfer.wait(task.task_id, timeout_s=0).ok


def test_cancel_of_a_finished_task_is_not_an_error(mock: responses.RequestsMock, transfer: GlobusTransfer) -> None:
    """Globus answers 409 to cancelling a task that already ended; that is fine."""
    mock.add("POST", f"{BASE}/task/t-1/cancel", status=409, json={"code": "Conflict", "message": "complete"})
    transfer.cancel("t-1")


def test_status_maps_globus_states(mock: responses.RequestsMock, transfer: GlobusTransfer) -> None:
    """INACTIVE counts as ACTIVE; a cancelled task (FAILED with CANCELED) is CANCELLED."""
    for task_id, doc in {
        "t-active": _task_doc("t-active", "INACTIVE"),
        "t-ok": _task_doc("t-ok", "SUCCEEDED"),
        "t-bad": _task_doc("t-bad", "FAILED", fatal_error={"code": "PERMISSION_DENIED"}),
        "t-off": _task_doc("t-off", "FAILED", fatal_error={"code": "CANCELED"}),
    }.items():
        mock.add("GET", f"{BASE}/task/{task_id}", json=doc)

    assert transfer.status("t-active") is TaskStatus.ACTIVE
    assert transfer.status("t-ok") is TaskStatus.SUCCEEDED
    assert transfer.status("t-bad") is TaskStatus.FAILED
    assert transfer.status("t-off") is TaskStatus.CANCELLED


# --- retries and errors from the API ---------------------------------------------


def test_a_429_is_retried(
    sim: SimulatedGlobus, transfer: GlobusTransfer, source: Endpoint, destination: Endpoint
) -> None:
    """Throttling is retried (without sleeping in tests) and the submit goes through once."""
    sim.put(COLL_A, "/data/raw/x.h5", b"x")
    sim.fail_next("POST", r"/transfer$", 429, "RequestLimitExceeded", count=1, **{"Retry-After": "2"})

    task = transfer.submit(_request(source, destination, "x.h5"))

    assert sim.calls.count(("POST", "/v0.10/transfer")) == 2
    assert list(sim.tasks) == [task.task_id]


def test_repeated_500s_become_a_transient_error(
    sim: SimulatedGlobus, transfer: GlobusTransfer, source: Endpoint, destination: Endpoint
) -> None:
    """After the bounded attempts a 5xx surfaces as TransientTransferError, chained to the SDK error."""
    sim.fail_next("POST", r"/transfer$", 500, "ServiceUnavailable", count=10)

    with pytest.raises(TransientTransferError, match="unavailable or throttling") as caught:
        transfer.submit(_request(source, destination, "x.h5"))

    assert sim.calls.count(("POST", "/v0.10/transfer")) == 3
    assert isinstance(caught.value.__cause__, globus_sdk.GlobusAPIError)
    assert not sim.tasks


def test_a_network_error_is_retried_then_transient(mock: responses.RequestsMock, transfer: GlobusTransfer) -> None:
    """Unreachable Globus (here: nothing registered) is a transient error after the retries."""
    with pytest.raises(TransientTransferError, match="could not reach Globus"):
        transfer.status("t-unreachable")


def test_a_400_is_not_retried(
    mock: responses.RequestsMock, transfer: GlobusTransfer, source: Endpoint, destination: Endpoint
) -> None:
    """A refused request maps to TransferError at once."""
    load_response("transfer.submit_transfer", case="failure", requests_mock=mock)

    with pytest.raises(TransferError, match="NoTransferItems"):
        transfer.submit(_request(source, destination, "x.h5"))
    assert len(mock.calls) == 1


def test_a_401_is_a_credentials_error(mock: responses.RequestsMock, transfer: GlobusTransfer) -> None:
    """Rejected credentials are not retried and say which variables to check."""
    mock.add("GET", f"{BASE}/task/t-1", status=401, json={"code": "AuthenticationFailed", "message": "Token invalid"})

    with pytest.raises(CredentialsError, match="GLOBUS_CLIENT_ID"):
        transfer.status("t-1")


def test_a_403_on_submit_is_permission_denied(
    mock: responses.RequestsMock, transfer: GlobusTransfer, source: Endpoint, destination: Endpoint
) -> None:
    """A collection that refuses the client maps to PermissionDenied."""
    mock.add(
        "POST", f"{BASE}/transfer", status=403, json={"code": "PermissionDenied", "message": "no access to collection"}
    )
    with pytest.raises(PermissionDenied, match="no access to collection"):
        transfer.submit(_request(source, destination, "x.h5"))


def test_a_client_factory_is_called_once_on_first_use(sim: SimulatedGlobus, clock: FakeClock) -> None:
    """A lazily built client is made on the first call, not when the adapter is constructed."""
    built: list[globus_sdk.TransferClient] = []

    def factory() -> globus_sdk.TransferClient:
        built.append(globus_sdk.TransferClient())
        return built[-1]

    adapter = GlobusTransfer(factory, clock=clock)
    assert built == []
    for _ in range(2):
        with pytest.raises(TransferError, match="does not know this task") as caught:
            adapter.status("no-such-task")
        assert type(caught.value) is TransferError
    assert len(built) == 1
