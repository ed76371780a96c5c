"""Work pools and deployments of one beamline, created idempotently (``splash prefect deploy``).

Per beamline ``bl`` (pool prefix from ``options.prefect.work_pool_prefix``, default ``splash``):

- pool ``splash-bl-dispatch``: ``splash-dispatch/bl-dispatch`` (the dispatcher for one batch: the
  watcher and other tools trigger it), ``splash-new-file/bl-new-file`` (only the new-file
  pipeline), ``splash-reconcile/bl-reconcile`` (files that arrived while nothing watched) and,
  when ``flight_checks`` has a route named ``bl``, ``splash-flight-check/bl-flight-check``
  (every 12 h);
- pool ``splash-bl-prune``: ``splash-prune/bl-prune`` (every due prune, the ledger decides, and
  due archives; every hour, one run at a time) and, when the beamline has an ``archive`` block,
  ``splash-archive/bl-archive`` (scheduled tape archives land here).

Deployments name their flow by module path, so a ``process`` worker started from the
environment where splash_core is installed imports it directly; their only pull step sets the
working directory (the configuration file's folder), so no code is copied from storage. The
configuration file goes with every run twice: as the ``config`` parameter and as
``SPLASH_CONFIG`` in the job's environment.

Applying a plan twice changes nothing the second time: each pool and deployment is compared
with what the server has and only written when it differs.
"""

from __future__ import annotations

import copy
import importlib.metadata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import yaml

from splash_core.adapters.prefect.naming import (
    FLOW_ARCHIVE,
    FLOW_DISPATCH,
    FLOW_FLIGHT_CHECK,
    FLOW_NEW_FILE,
    FLOW_PRUNE,
    FLOW_RECONCILE,
    PURPOSE_DISPATCH,
    PURPOSE_PRUNE,
    deployment_name,
    pool_name,
)
from splash_core.domain.errors import SchedulerError
from splash_core.domain.settings import Settings
from splash_core.entrypoints.prefect.options import PrefectOptions, prefect_options

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.responses import DeploymentResponse

FLOWS_MODULE = "splash_core.entrypoints.prefect.flows"
_FUNCTIONS = {
    FLOW_DISPATCH: "dispatch_flow",
    FLOW_NEW_FILE: "new_file_flow",
    FLOW_PRUNE: "prune_flow",
    FLOW_ARCHIVE: "archive_flow",
    FLOW_FLIGHT_CHECK: "flight_check_flow",
    FLOW_RECONCILE: "reconcile_flow",
}
POOL_TYPE = "process"
ANCHOR = datetime(2025, 1, 1, tzinfo=UTC)  # interval schedules fire on the hour, not at deploy time
SET_WORKING_DIRECTORY = "prefect.deployments.steps.set_working_directory"
LOG_ENV = {"PREFECT_LOGGING_EXTRA_LOGGERS": "splash_core"}  # domain logs show in the Prefect UI


@attrs.frozen
class PoolSpec:
    """A work pool splash needs."""

    name: str
    purpose: str
    description: str
    concurrency_limit: int | None = None
    type: str = POOL_TYPE


@attrs.frozen
class ScheduleSpec:
    """A periodic schedule: every ``interval_seconds``, or at ``cron``."""

    interval_seconds: float | None = None
    cron: str | None = None
    timezone: str = "UTC"

    def __str__(self) -> str:
        if self.cron is not None:
            return f"cron {self.cron!r} ({self.timezone})"
        seconds = self.interval_seconds or 0.0
        return f"every {seconds / 3600:g} h" if seconds >= 3600 else f"every {seconds / 60:g} min"

    def key(self) -> tuple[str, str, str]:
        """What identifies the schedule, for comparison with the server's."""
        if self.cron is not None:
            return ("cron", self.cron, self.timezone)
        return ("interval", f"{self.interval_seconds or 0.0:g}", self.timezone)


@attrs.frozen
class DeploymentSpec:
    """A deployment splash needs: which flow, which pool, its defaults and schedule."""

    flow_name: str
    name: str
    pool: str
    description: str
    parameters: Mapping[str, Any]
    job_variables: Mapping[str, Any]
    tags: tuple[str, ...]
    working_directory: str
    schedule: ScheduleSpec | None = None
    concurrency_limit: int | None = None

    @property
    def full_name(self) -> str:
        """``<flow>/<deployment>``, as ``run_deployment`` takes it."""
        return f"{self.flow_name}/{self.name}"

    @property
    def entrypoint(self) -> str:
        """The flow's module path in the installed package."""
        return f"{FLOWS_MODULE}.{_FUNCTIONS[self.flow_name]}"

    @property
    def pull_steps(self) -> list[dict[str, Any]]:
        """Only a working directory: the code is the installed package, nothing is copied from storage."""
        return [{SET_WORKING_DIRECTORY: {"directory": self.working_directory}}]


@attrs.frozen
class DeployPlan:
    """Everything ``splash prefect deploy BEAMLINE`` creates."""

    beamline: str
    config_path: str
    pools: tuple[PoolSpec, ...]
    deployments: tuple[DeploymentSpec, ...]

    def deployment(self, flow_name: str) -> DeploymentSpec:
        """The deployment of ``flow_name`` in this plan.

        Raises:
            KeyError: the plan has none.
        """
        for spec in self.deployments:
            if spec.flow_name == flow_name:
                return spec
        raise KeyError(flow_name)

    def pool(self, purpose: str) -> PoolSpec:
        """The pool for ``purpose`` (``dispatch`` or ``prune``).

        Raises:
            KeyError: the plan has none.
        """
        for pool in self.pools:
            if pool.purpose == purpose:
                return pool
        raise KeyError(purpose)


@attrs.frozen
class Change:
    """What applying a plan did to one pool or deployment: ``created``, ``updated`` or ``unchanged``."""

    kind: str
    name: str
    action: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.action}" + (f" ({self.detail})" if self.detail else "")


def plan_deployments(
    settings: Settings, beamline_id: str, config_path: str | Path, options: PrefectOptions | None = None
) -> DeployPlan:
    """The pools and deployments of ``beamline_id`` (see the module docstring).

    Args:
        settings: the validated configuration.
        beamline_id: a configured beamline.
        config_path: the configuration file the flow runs open (made absolute).
        options: ``options.prefect`` (read from ``settings`` when None).

    Raises:
        UnknownBeamline: the beamline is not configured.
        ConfigError: ``options.prefect`` is invalid.
    """
    beamline = settings.beamline(beamline_id)
    opts = options or prefect_options(settings)
    config = str(Path(config_path).expanduser().resolve())
    dispatch_pool = PoolSpec(
        pool_name(opts.work_pool_prefix, beamline.id, PURPOSE_DISPATCH),
        PURPOSE_DISPATCH,
        f"splash {beamline.id}: dispatch, reconcile and flight checks",
        opts.pool_concurrency,
    )
    prune_pool = PoolSpec(
        pool_name(opts.work_pool_prefix, beamline.id, PURPOSE_PRUNE),
        PURPOSE_PRUNE,
        f"splash {beamline.id}: prunes and tape archives",
        opts.pool_concurrency,
    )
    job_variables = {"env": {"SPLASH_CONFIG": config, **LOG_ENV}}
    tags = ("splash", beamline.id)

    def spec(flow_name: str, kind: str, pool: PoolSpec, description: str, **kw: Any) -> DeploymentSpec:
        parameters = {**kw.pop("parameters", {}), "config": config}
        return DeploymentSpec(
            flow_name=flow_name,
            name=deployment_name(beamline.id, kind),
            pool=pool.name,
            description=description,
            parameters=parameters,
            job_variables=job_variables,
            tags=(*tags, pool.purpose),
            working_directory=str(Path(config).parent),
            **kw,
        )

    title = beamline.title or beamline.id
    prune_schedule = (
        ScheduleSpec(cron=opts.prune_cron, timezone=opts.timezone)
        if opts.prune_cron
        else ScheduleSpec(interval_seconds=opts.prune_interval_minutes * 60.0, timezone=opts.timezone)
    )
    deployments = [
        spec(
            FLOW_DISPATCH,
            "dispatch",
            dispatch_pool,
            f"{title}: run the dispatcher for a batch of new files",
            parameters={"beamline": beamline.id},
        ),
        spec(
            FLOW_NEW_FILE,
            "new-file",
            dispatch_pool,
            f"{title}: copy, catalogue and schedule prunes for a batch (no processing)",
            parameters={"beamline": beamline.id},
        ),
        spec(
            FLOW_RECONCILE,
            "reconcile",
            dispatch_pool,
            f"{title}: dispatch files that arrived while nothing was watching",
            parameters={"beamline": beamline.id},
        ),
        spec(
            FLOW_PRUNE,
            "prune",
            prune_pool,
            f"{title}: carry out every due prune (the ledger decides) and due archives",
            schedule=prune_schedule,
            concurrency_limit=1,
        ),
    ]
    if beamline.archive is not None:
        deployments.append(
            spec(
                FLOW_ARCHIVE,
                "archive",
                prune_pool,
                f"{title}: archive {beamline.archive.source} to tape",
                parameters={"beamline": beamline.id},
            )
        )
    if beamline.id in settings.flight_checks:
        deployments.append(
            spec(
                FLOW_FLIGHT_CHECK,
                "flight-check",
                dispatch_pool,
                f"{title}: a probe file along {' -> '.join(settings.flight_checks[beamline.id])}",
                parameters={"route": beamline.id},
                schedule=ScheduleSpec(interval_seconds=opts.flight_check_interval_hours * 3600.0, timezone="UTC"),
            )
        )
    return DeployPlan(beamline.id, config, (dispatch_pool, prune_pool), tuple(deployments))


# --- prefect.yaml -----------------------------------------------------------------------


def _schedule_yaml(schedule: ScheduleSpec) -> dict[str, Any]:
    if schedule.cron is not None:
        return {"cron": schedule.cron, "timezone": schedule.timezone, "active": True}
    return {
        "interval": schedule.interval_seconds,
        "anchor_date": ANCHOR.isoformat(),
        "timezone": schedule.timezone,
        "active": True,
    }


def render_prefect_yaml(plan: DeployPlan) -> str:
    """A ``prefect.yaml`` with the plan's deployments, for ``prefect --no-prompt deploy --all``.

    Work pools are not part of a prefect.yaml; ``splash prefect deploy`` creates them (or
    ``prefect work-pool create NAME --type process``).
    """
    try:
        version = importlib.metadata.version("prefect")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - prefect is a dependency
        version = "3"
    document = {
        "name": f"splash-{plan.beamline}",
        "prefect-version": version,
        "build": None,
        "push": None,
        "pull": [{SET_WORKING_DIRECTORY: {"directory": str(Path(plan.config_path).parent)}}],
        "deployments": [
            {
                "name": d.name,
                "entrypoint": d.entrypoint,
                "description": d.description,
                "tags": list(d.tags),
                "parameters": dict(d.parameters),
                "enforce_parameter_schema": True,
                **({"concurrency_limit": d.concurrency_limit} if d.concurrency_limit else {}),
                "schedules": [_schedule_yaml(d.schedule)] if d.schedule else [],
                "work_pool": {"name": d.pool, "job_variables": copy.deepcopy(dict(d.job_variables))},
            }
            for d in plan.deployments
        ],
    }
    pools = ", ".join(p.name for p in plan.pools)
    header = (
        f"# Prefect deployments of splash beamline {plan.beamline} (`splash prefect yaml {plan.beamline}`).\n"
        f"# `splash prefect deploy {plan.beamline}` does the same and creates the work pools ({pools});\n"
        "# with this file instead: create the pools (prefect work-pool create NAME --type process), then\n"
        "#   prefect --no-prompt deploy --all --prefect-file THIS_FILE\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False)


# --- applying a plan ----------------------------------------------------------------------


@contextmanager
def _client(api_url: str | None, what: str) -> Iterator[SyncPrefectClient]:
    import httpx
    from prefect.client.orchestration import SyncPrefectClient, get_client
    from prefect.exceptions import PrefectException
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, PREFECT_API_URL

    url = api_url or str(PREFECT_API_URL.value() or "")
    if not url:
        raise SchedulerError(
            f"cannot {what}: no Prefect API configured; set PREFECT_API_URL to the server "
            "(e.g. http://127.0.0.1:4200/api) or options.prefect.api_url"
        )
    try:
        client = (
            SyncPrefectClient(api_url, api_key=PREFECT_API_KEY.value(), auth_string=PREFECT_API_AUTH_STRING.value())
            if api_url
            else get_client(sync_client=True)
        )
        with client:
            yield client
    except SchedulerError:
        raise
    except (PrefectException, httpx.HTTPError, OSError, RuntimeError, ValueError) as exc:
        raise SchedulerError(
            f"Prefect API {url}: cannot {what}: {type(exc).__name__}: {exc}; "
            "check that the server is up (prefect server start) and retry"
        ) from exc


def _apply_pool(client: SyncPrefectClient, pool: PoolSpec) -> Change:
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    try:
        existing = client.read_work_pool(pool.name)
    except ObjectNotFound:
        client.create_work_pool(
            WorkPoolCreate(
                name=pool.name,
                type=pool.type,
                description=pool.description,
                base_job_template=ProcessWorker.get_default_base_job_template(),
                concurrency_limit=pool.concurrency_limit,
            )
        )
        limit = f", at most {pool.concurrency_limit} run(s) at once" if pool.concurrency_limit else ""
        return Change("work pool", pool.name, "created", f"type {pool.type}{limit}")
    if existing.type != pool.type:
        raise SchedulerError(
            f"work pool {pool.name} exists with type {existing.type!r}; splash runs its flows on a "
            f"{pool.type!r} pool. Delete it (prefect work-pool delete {pool.name}) or choose another "
            "options.prefect.work_pool_prefix"
        )
    if existing.concurrency_limit != pool.concurrency_limit:
        client.update_work_pool(pool.name, WorkPoolUpdate(concurrency_limit=pool.concurrency_limit))
        return Change(
            "work pool",
            pool.name,
            "updated",
            f"concurrency limit {existing.concurrency_limit} -> {pool.concurrency_limit}",
        )
    return Change("work pool", pool.name, "unchanged")


def _parameter_schema(flow_name: str) -> dict[str, Any]:
    from prefect.utilities.callables import parameter_schema

    from splash_core.entrypoints.prefect.flows import FLOWS

    schema: dict[str, Any] = parameter_schema(FLOWS[flow_name]).model_dump(exclude_unset=True)
    return schema


def _existing_schedules(deployment: DeploymentResponse) -> list[tuple[str, str, str]]:
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

    keys: list[tuple[str, str, str]] = []
    for item in deployment.schedules:
        if not item.active:
            continue
        schedule = item.schedule
        if isinstance(schedule, IntervalSchedule):
            keys.append(("interval", f"{schedule.interval.total_seconds():g}", schedule.timezone or "UTC"))
        elif isinstance(schedule, CronSchedule):
            keys.append(("cron", schedule.cron, schedule.timezone or "UTC"))
        else:
            keys.append(("other", repr(schedule), ""))
    return sorted(keys)


def _fingerprint(spec: DeploymentSpec, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "entrypoint": spec.entrypoint,
        "work pool": spec.pool,
        "parameters": dict(spec.parameters),
        "job variables": dict(spec.job_variables),
        "tags": sorted(spec.tags),
        "description": spec.description,
        "schedules": [spec.schedule.key()] if spec.schedule else [],
        "parameter schema": schema,
        "concurrency limit": spec.concurrency_limit,
        "paused": False,
        "pull steps": spec.pull_steps,
        "enforce parameter schema": True,
    }


def _fingerprint_of(deployment: DeploymentResponse) -> dict[str, Any]:
    # the server keeps a deployment's limit as a global concurrency limit (``concurrency_limit`` is deprecated)
    limit = deployment.global_concurrency_limit.limit if deployment.global_concurrency_limit else None
    return {
        "entrypoint": deployment.entrypoint,
        "work pool": deployment.work_pool_name,
        "parameters": deployment.parameters,
        "job variables": deployment.job_variables,
        "tags": sorted(deployment.tags),
        "description": deployment.description,
        "schedules": _existing_schedules(deployment),
        "parameter schema": deployment.parameter_openapi_schema,
        "concurrency limit": limit,
        "paused": deployment.paused,
        "pull steps": deployment.pull_steps or [],
        "enforce parameter schema": deployment.enforce_parameter_schema,
    }


def _schedule_create(schedule: ScheduleSpec) -> Any:
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

    if schedule.cron is not None:
        return DeploymentScheduleCreate(schedule=CronSchedule(cron=schedule.cron, timezone=schedule.timezone))
    interval = IntervalSchedule(
        interval=timedelta(seconds=schedule.interval_seconds or 3600.0), anchor_date=ANCHOR, timezone=schedule.timezone
    )
    return DeploymentScheduleCreate(schedule=interval, active=True)


def _apply_deployment(client: SyncPrefectClient, spec: DeploymentSpec) -> Change:
    from prefect.exceptions import ObjectNotFound

    schema = _parameter_schema(spec.flow_name)
    desired = _fingerprint(spec, schema)
    try:
        existing = client.read_deployment_by_name(spec.full_name)
    except ObjectNotFound:
        existing = None
    if existing is not None:
        current = _fingerprint_of(existing)
        differs = [k for k in desired if desired[k] != current[k]]
        if not differs:
            return Change("deployment", spec.full_name, "unchanged")
    flow_id = client.create_flow_from_name(spec.flow_name)
    client.create_deployment(
        flow_id=flow_id,
        name=spec.name,
        entrypoint=spec.entrypoint,
        work_pool_name=spec.pool,
        parameters=dict(spec.parameters),
        job_variables=dict(spec.job_variables),
        tags=list(spec.tags),
        description=spec.description,
        schedules=[_schedule_create(spec.schedule)] if spec.schedule else [],
        parameter_openapi_schema=schema,
        enforce_parameter_schema=True,
        concurrency_limit=spec.concurrency_limit,
        paused=False,
        pull_steps=spec.pull_steps,
        path=None,
    )
    where = f"pool {spec.pool}" + (f", {spec.schedule}" if spec.schedule else "")
    if existing is None:
        return Change("deployment", spec.full_name, "created", where)
    return Change("deployment", spec.full_name, "updated", f"{where}; changed: {', '.join(differs)}")


def apply_plan(plan: DeployPlan, *, api_url: str | None = None) -> list[Change]:
    """Create or update the plan's work pools and deployments; what already matches is left alone.

    Raises:
        SchedulerError: no Prefect API configured or reachable, or a pool of another type exists.
    """
    with _client(api_url, f"deploy beamline {plan.beamline}") as client:
        changes = [_apply_pool(client, pool) for pool in plan.pools]
        changes.extend(_apply_deployment(client, spec) for spec in plan.deployments)
    return changes


__all__ = [
    "Change",
    "DeployPlan",
    "DeploymentSpec",
    "PoolSpec",
    "ScheduleSpec",
    "apply_plan",
    "plan_deployments",
    "render_prefect_yaml",
]
