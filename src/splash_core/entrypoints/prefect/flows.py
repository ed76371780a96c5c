"""Prefect flows: thin wrappers that open the splash configuration and call the application.

Every flow takes ``config`` (the configuration file; default ``$SPLASH_CONFIG``) and builds the
application inside its flow run, so settings (decisions, retention, routes) come from the splash
configuration, never from Prefect Variables or Blocks, and secrets are read only when a flow
runs. One flow run handles a whole batch of files. Retries belong to the domain (transfers and
jobs retry transient errors themselves), so no flow has Prefect retries. A flow whose work failed
raises, so its flow run ends FAILED with the domain's message.

Deployments name these by module path (``splash_core.entrypoints.prefect.flows.dispatch_flow``):
workers import them from the installed package; no code is pulled from storage.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
from prefect import Flow, flow, get_run_logger

from splash_core.adapters.prefect.naming import (
    FLOW_ARCHIVE,
    FLOW_DISPATCH,
    FLOW_FLIGHT_CHECK,
    FLOW_NEW_FILE,
    FLOW_PRUNE,
    FLOW_RECONCILE,
)
from splash_core.adapters.prefect.scheduler import task_from_parameter
from splash_core.beamlines import archive as archive_paths
from splash_core.beamlines import dispatcher_for, run_scheduled_task
from splash_core.domain.errors import InvalidInput, PipelineError, SplashError
from splash_core.domain.paths import RelPath
from splash_core.domain.services.archive import ArchiveReport
from splash_core.domain.services.dispatch import NEW_FILE, DispatchReport, DispatchRequest, OutcomeState
from splash_core.entrypoints.api import open_config

_SHOWN = 20  # problems listed one by one in a flow run's log before "and N more"


def _summary(report: DispatchReport) -> dict[str, Any]:
    return {
        "beamline": report.beamline,
        "files": len(report.paths),
        "ok": report.ok,
        "outcomes": {o.name: str(o) for o in report.outcomes},
    }


def _check_dispatch(report: DispatchReport, what: str) -> dict[str, Any]:
    log = get_run_logger()
    for outcome in report.outcomes:
        log.info("%s %s: %s", report.beamline, what, outcome)
    if not report.ok:
        problems = [str(o) for o in report.outcomes if o.state in (OutcomeState.FAILED, OutcomeState.NOT_RUN)]
        raise PipelineError(
            f"{report.beamline} {what} of {len(report.paths)} file(s) failed: {'; '.join(problems)}",
            step=what,
        )
    return _summary(report)


def _archive_summary(report: ArchiveReport, what: str) -> dict[str, Any]:
    log = get_run_logger()
    log.info(
        "%s: %d bundle(s) written, %d already on tape, %d path(s) refused, %d bundle(s) failed",
        what,
        len(report.receipts),
        len(report.already),
        len(report.refused),
        len(report.failed),
    )
    if not report.ok:
        problems = [f"{path}: {why}" for path, why in report.refused] + [f"{b}: {e}" for b, e in report.failed]
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        raise PipelineError(f"{what} failed: {'; '.join(problems[:_SHOWN])}{more}", step="archive")
    return {
        "bundles": [r.bundle for r in report.receipts],
        "already": list(report.already),
        "files": len(report.archived_paths),
    }


@flow(name=FLOW_DISPATCH, flow_run_name="{beamline}-dispatch", retries=0)
def dispatch_flow(
    beamline: str,
    paths: list[str],
    export_controlled: bool = False,
    parameters: dict[str, Any] | None = None,
    config: str | None = None,
) -> dict[str, Any]:
    """Run the beamline's dispatcher for one batch of new files (relative to its source endpoint).

    Raises:
        PipelineError: a pipeline failed or did not run (the message lists which and why).
        InvalidInput: bad paths or parameters; nothing ran.
    """
    splash = open_config(config)
    report = splash.dispatch(beamline, paths, export_controlled=export_controlled, parameters=parameters)
    return _check_dispatch(report, "dispatch")


@flow(name=FLOW_NEW_FILE, flow_run_name="{beamline}-new-file", retries=0)
def new_file_flow(
    beamline: str,
    paths: list[str],
    export_controlled: bool = False,
    config: str | None = None,
) -> dict[str, Any]:
    """Only the new-file pipeline (copies, catalog, prunes) for a batch; no processing.

    Raises:
        PipelineError: the pipeline failed (the message says which step and why).
    """
    splash = open_config(config)
    settings = splash.settings.beamline(beamline)
    only_new_file = attrs.evolve(settings, decisions={NEW_FILE: True})
    request = DispatchRequest(only_new_file, tuple(RelPath.parse(p) for p in paths), export_controlled)
    report = dispatcher_for(splash.services(), beamline).dispatch(request)
    return _check_dispatch(report, NEW_FILE)


@flow(name=FLOW_PRUNE, flow_run_name="prune", retries=0)
def prune_flow(
    at: datetime | None = None,
    dry_run: bool = False,
    config: str | None = None,
    scheduled: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Carry out every prune the ledger says is due, then every other due scheduled task (archives).

    The periodic deployment runs this; a scheduled prune's flow run (``scheduled`` set) does the
    same sweep, which includes its own prune. A refused prune keeps its file and is no failure
    (it is retried by the next sweep); a failed archive is.

    Raises:
        PipelineError: a due scheduled task failed.
    """
    log = get_run_logger()
    splash = open_config(config)
    if scheduled is not None:
        task = task_from_parameter(scheduled)
        log.info("woken for scheduled %s %s (due %s)", task.kind, task.key, task.run_at.isoformat())
    run = splash.prune(at=at, dry_run=dry_run)
    report = run.report
    log.info(
        "prune at %s%s: %d deleted, %d ready, %d already gone, %d refused; catalog outbox: %d sent, %d pending",
        report.at.isoformat(),
        " (dry run)" if dry_run else "",
        len(report.deleted),
        len(report.would_delete),
        len(report.already_gone),
        len(report.refused),
        run.ingests_flushed,
        run.ingests_pending,
    )
    for refused in report.refused[:_SHOWN]:
        log.warning("kept %s on %s: %s", refused.path, refused.endpoint, refused.reason)
    errors: list[str] = []
    ran: list[str] = []
    if not dry_run:
        services = splash.services()
        for task in services.scheduler.pending(before=at or splash.clock.now()):
            if task.kind == "prune":
                continue  # the sweep above did every due prune; those still pending were refused
            try:
                result = run_scheduled_task(services, task)
            except SplashError as exc:
                errors.append(f"{task.kind} {task.key}: {exc}")
                continue
            if isinstance(result, ArchiveReport) and not result.ok:
                errors.append(f"{task.kind} {task.key}: {len(result.refused)} refused, {len(result.failed)} failed")
            else:
                ran.append(task.key)
    if errors:
        raise PipelineError(f"{len(errors)} due scheduled task(s) failed: {'; '.join(errors[:_SHOWN])}", step="tasks")
    return {
        "deleted": len(report.deleted),
        "would_delete": len(report.would_delete),
        "already_gone": len(report.already_gone),
        "refused": len(report.refused),
        "tasks_run": ran,
    }


@flow(name=FLOW_ARCHIVE, flow_run_name="{beamline}-archive", retries=0)
def archive_flow(
    beamline: str,
    paths: list[str] | None = None,
    config: str | None = None,
    scheduled: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Archive ``paths`` (on the beamline's ``archive.source``) to tape, or carry out a scheduled archive.

    Raises:
        InvalidInput: neither paths nor a scheduled task.
        PipelineError: a path was refused or a bundle failed.
    """
    splash = open_config(config)
    services = splash.services()
    if scheduled is not None:
        task = task_from_parameter(scheduled)
        result = run_scheduled_task(services, task)
        if not isinstance(result, ArchiveReport):
            raise InvalidInput(f"scheduled task {task.key} is a {task.kind}, not an archive")
        return _archive_summary(result, f"scheduled archive {task.key}")
    if not paths:
        raise InvalidInput(f"archive of {beamline}: give paths (relative to its archive source) to archive")
    report = archive_paths(services, beamline, [RelPath.parse(p) for p in paths])
    return _archive_summary(report, f"{beamline} archive of {len(paths)} path(s)")


@flow(name=FLOW_FLIGHT_CHECK, flow_run_name="{route}-flight-check", retries=0)
def flight_check_flow(route: str, config: str | None = None) -> dict[str, Any]:
    """Send the probe file along ``flight_checks.<route>`` and verify every hop.

    Raises:
        TransferError: a hop failed or did not verify (names the hop).
    """
    log = get_run_logger()
    report = open_config(config).flight_check(route)
    for hop in report.hops:
        log.info(
            "%s -> %s: %d bytes in %.1f s, %s (verified by %s)",
            hop.source,
            hop.destination,
            hop.size,
            hop.seconds,
            hop.checksum,
            hop.verified_by,
        )
    return {"route": report.route, "hops": [f"{h.source}->{h.destination}" for h in report.hops]}


@flow(name=FLOW_RECONCILE, flow_run_name="{beamline}-reconcile", retries=0)
def reconcile_flow(beamline: str, dry_run: bool = False, config: str | None = None) -> dict[str, Any]:
    """Dispatch the files on the beamline's source that have no verified copy at its first hop.

    Raises:
        PipelineError: a batch failed.
    """
    log = get_run_logger()
    report = open_config(config).reconcile(beamline, dry_run=dry_run)
    log.info(
        "%s: %d file(s) on %s without a verified copy on %s%s",
        beamline,
        len(report.missing),
        report.source,
        report.destination,
        " (dry run)" if dry_run else f"; {len(report.dispatched)} batch(es) dispatched",
    )
    failed = [r for r in report.dispatched if not r.ok]
    if failed:
        problems = [str(o) for r in failed for o in r.failed]
        raise PipelineError(
            f"{beamline} reconcile: {len(failed)} of {len(report.dispatched)} batch(es) failed: "
            f"{'; '.join(problems[:_SHOWN])}",
            step="reconcile",
        )
    return {"missing": len(report.missing), "batches": len(report.dispatched)}


FLOWS: dict[str, Flow[..., Any]] = {
    FLOW_DISPATCH: dispatch_flow,
    FLOW_NEW_FILE: new_file_flow,
    FLOW_PRUNE: prune_flow,
    FLOW_ARCHIVE: archive_flow,
    FLOW_FLIGHT_CHECK: flight_check_flow,
    FLOW_RECONCILE: reconcile_flow,
}
"""Flow name -> flow, for deployments."""

__all__ = [
    "FLOWS",
    "archive_flow",
    "dispatch_flow",
    "flight_check_flow",
    "new_file_flow",
    "prune_flow",
    "reconcile_flow",
]
