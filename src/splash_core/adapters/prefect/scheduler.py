"""Scheduled work (prunes, archives, flight checks) as scheduled Prefect flow runs.

How the port maps onto flow runs:

``schedule(task)``
    A flow run of the deployment that carries out ``task.kind`` for the task's beamline
    (``splash-prune/<beamline>-prune``, ``splash-archive/<beamline>-archive``; tasks without a
    ``beamline`` in their payload go to ``<flow>/global-<kind>``), in state ``Scheduled`` at
    ``task.run_at``, with the task as its ``scheduled`` parameter. The run's idempotency key is
    ``<namespace>:<task.key>``, so scheduling a key again returns the same run. Every such run
    is tagged ``<namespace>-task``.
``pending(before)``
    Those runs that are not ``COMPLETED`` or ``CANCELLED`` (a ``FAILED`` or ``CRASHED`` run is
    still owed), due at or before ``before``, earliest first.
``mark_done(key)``
    The run under ``key`` is set ``COMPLETED`` unless it is running (a running run finishes on
    its own): the work was carried out by another run, e.g. the periodic prune sweep.
``cancel(key)``
    The run under ``key`` is deleted, which frees the key; a running run is cancelled instead.

With a ``mirror`` (the container passes the SQLite scheduler in the ledger's database), every
call goes to the mirror first and ``pending`` reads the mirror: the flow runs are only wake-up
calls at the due time, and losing the Prefect database loses nothing. Retention never depends
on either: prunes are scheduled in the ledger, and the periodic prune flow carries out every
prune the ledger says is due.

No Prefect type crosses the port; Prefect and HTTP errors become :class:`SchedulerError`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import httpx
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterIdempotencyKey,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound, PrefectException
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, PREFECT_API_URL
from prefect.states import Cancelling, Completed, Scheduled

from splash_core.adapters.prefect.naming import (
    DEFAULT_PREFIX,
    GLOBAL_SCOPE,
    TASK_FLOWS,
    full_deployment_name,
    task_tag,
)
from splash_core.domain.errors import SchedulerError
from splash_core.domain.models import ScheduledTask
from splash_core.ports.scheduler import SchedulerPort

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

logger = logging.getLogger(__name__)

_DONE = (StateType.COMPLETED, StateType.CANCELLED)
_PAGE = 200


def default_deployment(task: ScheduledTask) -> str:
    """The deployment that carries out ``task``: ``<flow>/<beamline>-<kind>``.

    Raises:
        SchedulerError: no flow carries out tasks of this kind.
    """
    flow = TASK_FLOWS.get(task.kind)
    if flow is None:
        known = ", ".join(sorted(TASK_FLOWS))
        raise SchedulerError(f"scheduled task {task.key}: no Prefect flow runs tasks of kind {task.kind!r} ({known})")
    return full_deployment_name(flow, task.payload.get("beamline") or GLOBAL_SCOPE, task.kind)


def task_to_parameter(task: ScheduledTask) -> dict[str, Any]:
    """``task`` as the JSON value of a flow's ``scheduled`` parameter."""
    return {"kind": task.kind, "key": task.key, "run_at": task.run_at.isoformat(), "payload": dict(task.payload)}


def task_from_parameter(value: Mapping[str, Any]) -> ScheduledTask:
    """The :class:`ScheduledTask` a flow's ``scheduled`` parameter holds.

    Raises:
        SchedulerError: the value is not a scheduled task.
    """
    try:
        run_at = datetime.fromisoformat(str(value["run_at"]))
        payload = value.get("payload") or {}
        return ScheduledTask(
            kind=str(value["kind"]),
            run_at=run_at if run_at.tzinfo else run_at.replace(tzinfo=UTC),
            key=str(value["key"]),
            payload={str(k): str(v) for k, v in dict(payload).items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SchedulerError(f"flow parameter 'scheduled' is not a scheduled task ({exc!r}): {value!r}") from exc


class PrefectScheduler(SchedulerPort):
    """Scheduled tasks as scheduled flow runs of per-beamline deployments (mapping in the module docstring).

    Args:
        api_url: the Prefect API (default: ``PREFECT_API_URL`` of the environment). Never an
            ephemeral server: without a URL every call raises :class:`SchedulerError`.
        namespace: prefixes idempotency keys and the task tag, so two splash installations
            (or test cases) can share one Prefect server.
        mirror: a scheduler that is written first and answers :meth:`pending` (see above).
        deployment_of: the ``flow/deployment`` name that carries out a task.
    """

    def __init__(
        self,
        *,
        api_url: str | None = None,
        namespace: str = DEFAULT_PREFIX,
        mirror: SchedulerPort | None = None,
        deployment_of: Callable[[ScheduledTask], str] = default_deployment,
    ) -> None:
        self._api_url = api_url
        self._namespace = namespace
        self._tag = task_tag(namespace)
        self._mirror = mirror
        self._deployment_of = deployment_of
        self._deployments: dict[str, UUID] = {}

    # --- plumbing ---------------------------------------------------------------------

    def _url(self) -> str:
        return self._api_url or str(PREFECT_API_URL.value() or "")

    @contextmanager
    def _client(self, what: str) -> Iterator[SyncPrefectClient]:
        url = self._url()
        if not url:
            raise SchedulerError(
                f"cannot {what}: no Prefect API configured; set PREFECT_API_URL "
                "(or options.prefect.api_url) to the server, e.g. http://127.0.0.1:4200/api"
            )
        try:
            if self._api_url:
                client = SyncPrefectClient(
                    self._api_url, api_key=PREFECT_API_KEY.value(), auth_string=PREFECT_API_AUTH_STRING.value()
                )
            else:
                client = get_client(sync_client=True)
            with client:
                yield client
        except SchedulerError:
            raise
        except (PrefectException, httpx.HTTPError, OSError, RuntimeError, ValueError) as exc:
            raise SchedulerError(
                f"Prefect API {url}: cannot {what}: {type(exc).__name__}: {exc}; "
                "check that the server is up (prefect server start) and retry"
            ) from exc

    def _key(self, key: str) -> str:
        return f"{self._namespace}:{key}"

    def _deployment_id(self, client: SyncPrefectClient, name: str, task: ScheduledTask) -> UUID:
        if name not in self._deployments:
            try:
                self._deployments[name] = client.read_deployment_by_name(name).id
            except ObjectNotFound:
                beamline = task.payload.get("beamline") or "BEAMLINE"
                raise SchedulerError(
                    f"scheduled task {task.key}: Prefect deployment {name} does not exist; "
                    f"create it with `splash prefect deploy {beamline}`"
                ) from None
        return self._deployments[name]

    def _runs(self, client: SyncPrefectClient, run_filter: FlowRunFilter) -> list[FlowRun]:
        runs: list[FlowRun] = []
        while True:
            page = client.read_flow_runs(
                flow_run_filter=run_filter, sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=_PAGE, offset=len(runs)
            )
            runs.extend(page)
            if len(page) < _PAGE:
                return runs

    def _run_of(self, client: SyncPrefectClient, key: str) -> FlowRun | None:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                idempotency_key=FlowRunFilterIdempotencyKey(any_=[self._key(key)]),
                tags=FlowRunFilterTags(all_=[self._tag]),
            ),
            limit=1,
        )
        return runs[0] if runs else None

    # --- the port -----------------------------------------------------------------------

    def schedule(self, task: ScheduledTask) -> str:
        """Create (or find) the scheduled flow run of ``task``; returns the flow run id.

        Raises:
            SchedulerError: no mirror and the run could not be created (server down, no deployment).
        """
        mirrored = self._mirror.schedule(task) if self._mirror is not None else None
        try:
            return self._schedule(task)
        except SchedulerError as exc:
            if mirrored is None:
                raise
            logger.warning(
                "%s run %s due %s is kept in the splash database but has no Prefect flow run (%s); "
                "the periodic prune flow will carry it out",
                task.kind,
                task.key,
                task.run_at.isoformat(),
                exc,
            )
            return mirrored

    def _schedule(self, task: ScheduledTask) -> str:
        name = self._deployment_of(task)
        with self._client(f"schedule {task.kind} run {task.key} on {name}") as client:
            try:
                return self._create(client, name, task)
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != httpx.codes.NOT_FOUND or name not in self._deployments:
                    raise
                del self._deployments[name]  # redeployed since it was looked up: look once more
                return self._create(client, name, task)

    def _create(self, client: SyncPrefectClient, name: str, task: ScheduledTask) -> str:
        run = client.create_flow_run_from_deployment(
            self._deployment_id(client, name, task),
            parameters={"scheduled": task_to_parameter(task)},
            state=Scheduled(scheduled_time=task.run_at),
            name=task.key,
            tags=["splash", self._tag, f"splash-{task.kind}"],
            idempotency_key=self._key(task.key),
        )
        return str(run.id)

    def pending(self, before: datetime | None = None) -> Sequence[ScheduledTask]:
        """Tasks whose flow run is not completed or cancelled, due at or before ``before``, earliest first."""
        if self._mirror is not None:
            return self._mirror.pending(before)
        run_filter = FlowRunFilter(
            tags=FlowRunFilterTags(all_=[self._tag]),
            state=FlowRunFilterState(type=FlowRunFilterStateType(not_any_=list(_DONE))),
            expected_start_time=(
                FlowRunFilterExpectedStartTime.model_validate({"before_": before}) if before is not None else None
            ),
        )
        with self._client("list pending scheduled runs") as client:
            runs = self._runs(client, run_filter)
        tasks: list[tuple[datetime, datetime, ScheduledTask]] = []
        for run in runs:
            value = run.parameters.get("scheduled")
            if not isinstance(value, Mapping):
                logger.warning("flow run %s is tagged %s but has no scheduled task; ignored", run.id, self._tag)
                continue
            task = task_from_parameter(value)
            if before is None or task.run_at <= before:
                tasks.append((task.run_at, run.created or task.run_at, task))
        tasks.sort(key=lambda item: (item[0], item[1]))
        return [task for _, _, task in tasks]

    def mark_done(self, key: str) -> None:
        """Complete the flow run under ``key`` unless it is running (no error if there is none)."""
        if self._mirror is not None:
            self._mirror.mark_done(key)
        with self._tolerated(key):
            self._mark_done(key)

    def _mark_done(self, key: str) -> None:
        with self._client(f"mark scheduled run {key} done") as client:
            run = self._run_of(client, key)
            if run is None or run.state_type in (StateType.COMPLETED, StateType.RUNNING):
                return
            client.set_flow_run_state(run.id, Completed(message=f"carried out by splash ({key})"), force=True)

    def cancel(self, key: str) -> None:
        """Delete the flow run under ``key`` (cancel it if running); no error if there is none."""
        if self._mirror is not None:
            self._mirror.cancel(key)
        with self._tolerated(key):
            self._cancel(key)

    def _cancel(self, key: str) -> None:
        with self._client(f"cancel scheduled run {key}") as client:
            run = self._run_of(client, key)
            if run is None:
                return
            if run.state_type is StateType.RUNNING:
                client.set_flow_run_state(run.id, Cancelling(message=f"cancelled by splash ({key})"), force=True)
                return
            try:
                client.delete_flow_run(run.id)
            except ObjectNotFound:
                return

    @contextmanager
    def _tolerated(self, key: str) -> Iterator[None]:
        """With a mirror, the mirror has recorded the change: Prefect trouble is only logged."""
        try:
            yield
        except SchedulerError as exc:
            if self._mirror is None:
                raise
            logger.warning("scheduled run %s: recorded in the splash database, not in Prefect (%s)", key, exc)


__all__ = ["PrefectScheduler", "default_deployment", "task_from_parameter", "task_to_parameter"]
