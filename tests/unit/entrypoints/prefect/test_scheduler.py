"""The Prefect scheduler against a real Prefect API: the scheduler contract, idempotency, the mirror."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from splash_core.adapters.local import SqliteScheduler
from splash_core.adapters.prefect.naming import FLOW_FLIGHT_CHECK, FLOW_PRUNE
from splash_core.adapters.prefect.scheduler import PrefectScheduler, default_deployment
from splash_core.domain.errors import SchedulerError
from splash_core.domain.models import ScheduledTask
from splash_core.ports.scheduler import SchedulerPort
from tests.contract.scheduler_contract import SchedulerContract, task

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_api", "global_deployments")]


def _client() -> Any:
    from prefect import get_client

    return get_client(sync_client=True)


@pytest.fixture(scope="session")
def global_deployments(prefect_api: str) -> None:
    """Deployments for tasks without a beamline (the contract's): ``<flow>/global-<kind>``, no work pool."""
    with _client() as client:
        for flow, kind in ((FLOW_PRUNE, "prune"), (FLOW_FLIGHT_CHECK, "flight-check")):
            flow_id = client.create_flow_from_name(flow)
            client.create_deployment(flow_id=flow_id, name=f"global-{kind}", entrypoint="tests:nothing")


def runs_with_key(namespace: str, key: str) -> list[Any]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterIdempotencyKey

    with _client() as client:
        return list(
            client.read_flow_runs(
                flow_run_filter=FlowRunFilter(idempotency_key=FlowRunFilterIdempotencyKey(any_=[f"{namespace}:{key}"]))
            )
        )


class TestPrefectScheduler(SchedulerContract):
    """The Prefect scheduler honours the scheduler contract (a fresh namespace per test)."""

    def make_scheduler(self, tmp_path: Path) -> SchedulerPort:
        return PrefectScheduler(namespace=f"t{uuid.uuid4().hex[:10]}")


class TestPrefectSchedulerWithMirror(SchedulerContract):
    """With the SQLite mirror the contract holds too (pending comes from the mirror)."""

    def make_scheduler(self, tmp_path: Path) -> SchedulerPort:
        return PrefectScheduler(namespace=f"t{uuid.uuid4().hex[:10]}", mirror=SqliteScheduler(tmp_path / "s.db"))


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def scheduler(namespace: str) -> PrefectScheduler:
    return PrefectScheduler(namespace=namespace)


def test_scheduling_a_key_twice_creates_one_flow_run(scheduler: PrefectScheduler, namespace: str) -> None:
    """The same key gives the same flow run id and only one run exists, scheduled at ``run_at``."""
    run_at = datetime.now(UTC) + timedelta(days=2)
    prune = ScheduledTask("prune", run_at, "prune/x/1", {"endpoint": "spot832"})

    first = scheduler.schedule(prune)
    again = scheduler.schedule(prune)

    assert first == again
    (run,) = runs_with_key(namespace, "prune/x/1")
    assert str(run.id) == first
    assert run.state.is_scheduled()
    assert run.state.state_details.scheduled_time == run_at
    assert run.parameters["scheduled"]["key"] == "prune/x/1"


def test_mark_done_completes_the_flow_run(scheduler: PrefectScheduler, namespace: str) -> None:
    """A run marked done is COMPLETED in Prefect and no longer pending."""
    scheduler.schedule(task("a", 1))

    scheduler.mark_done("a")

    (run,) = runs_with_key(namespace, "a")
    assert run.state.is_completed()
    assert scheduler.pending() == []


def test_cancel_deletes_the_flow_run_so_the_key_can_be_scheduled_again(
    scheduler: PrefectScheduler, namespace: str
) -> None:
    """After cancel, scheduling the key again makes a new run."""
    first = scheduler.schedule(task("a", 1))

    scheduler.cancel("a")
    second = scheduler.schedule(task("a", 2))

    assert second != first
    assert [t.run_at for t in scheduler.pending()] == [task("a", 2).run_at]


def test_a_failed_wake_up_is_still_pending(scheduler: PrefectScheduler, namespace: str) -> None:
    """A run that FAILED did not carry the task out: it stays pending until marked done."""
    from prefect.states import Failed

    scheduler.schedule(task("a", 1))
    (run,) = runs_with_key(namespace, "a")
    with _client() as client:
        client.set_flow_run_state(run.id, Failed(message="prune refused"), force=True)

    assert [t.key for t in scheduler.pending()] == ["a"]
    scheduler.mark_done("a")
    assert scheduler.pending() == []


def test_tasks_go_to_their_beamlines_deployment() -> None:
    """A prune of bl733 goes to splash-prune/bl733-prune; an unknown kind is refused."""
    prune = ScheduledTask("prune", datetime.now(UTC), "k", {"beamline": "bl733"})
    archive = ScheduledTask("archive", datetime.now(UTC), "k", {"beamline": "bl832"})

    assert default_deployment(prune) == "splash-prune/bl733-prune"
    assert default_deployment(archive) == "splash-archive/bl832-archive"
    with pytest.raises(SchedulerError, match="kind 'reboot'"):
        default_deployment(ScheduledTask("reboot", datetime.now(UTC), "k"))


def test_a_missing_deployment_says_how_to_create_it(scheduler: PrefectScheduler) -> None:
    """Scheduling for a beamline that was never deployed names `splash prefect deploy`."""
    prune = ScheduledTask("prune", datetime.now(UTC), "k", {"beamline": "bl999"})

    with pytest.raises(SchedulerError, match="splash prefect deploy bl999"):
        scheduler.schedule(prune)


def test_an_unreachable_server_is_a_scheduler_error(unused_port: int) -> None:
    """Errors from the API become SchedulerError naming the server."""
    down = PrefectScheduler(api_url=f"http://127.0.0.1:{unused_port}/api")

    with pytest.raises(SchedulerError, match=f"127.0.0.1:{unused_port}"):
        down.pending()


def test_with_a_mirror_an_unreachable_server_loses_nothing(tmp_path: Path, unused_port: int) -> None:
    """The task is kept in the mirror (the splash database) and is pending there."""
    mirror = SqliteScheduler(tmp_path / "s.db")
    down = PrefectScheduler(api_url=f"http://127.0.0.1:{unused_port}/api", mirror=mirror)
    prune = ScheduledTask("prune", datetime.now(UTC), "prune/bl733/x", {"beamline": "bl733"})

    run_id = down.schedule(prune)

    assert run_id.startswith("sched-")
    assert list(mirror.pending()) == [prune]
    assert list(down.pending()) == [prune]


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_deployment_created_again_is_found_again(namespace: str) -> None:
    """After the deployment is deleted and re-created (a new id), scheduling still works."""
    scheduler = PrefectScheduler(namespace=namespace)
    scheduler.schedule(task("a", 1))
    with _client() as client:
        old = client.read_deployment_by_name("splash-prune/global-prune")
        client.delete_deployment(old.id)
        flow_id = client.create_flow_from_name(FLOW_PRUNE)
        client.create_deployment(flow_id=flow_id, name="global-prune", entrypoint="tests:nothing")

    scheduler.schedule(task("b", 2))

    assert [t.key for t in scheduler.pending()] == ["b"]  # deleting a deployment deletes its scheduled runs
