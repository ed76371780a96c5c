"""The generic, configuration-driven beamline: new-file route, processing pipelines, dispatcher.

A beamline is a :class:`~splash_core.domain.settings.BeamlineSettings` block plus, where its
jobs need it, a :class:`BeamlineModule` that says how each job kind is parameterised. Every
pipeline runs through the resumable :class:`~splash_core.domain.services.pipeline.Pipeline`,
keyed by :func:`run_key` (beamline, pipeline, batch and the files' size and mtime), so
dispatching an unchanged batch again resumes it and a rewritten file is handled anew.

**new_file** (one run per batch of paths, relative to the beamline's source endpoint):

1. ``copy/<from>-><to>`` for each hop of ``copies`` in order, one move per hop for the whole
   batch; disabled hops are skipped, and so are off-site hops for export-controlled data. A
   hop depends on the earlier hop that delivers to its source.
2. ``ingest``: one raw catalog record for the batch (files with sizes and checksums from the
   ledger's verified copies on the first hop's destination); a catalog outage leaves it in the
   outbox and is not a failure.
3. ``prune``: for each retention policy (:func:`route_retention`) whose check copy was verified
   in this run, prunes in
   the ledger (the source of truth) plus a ``ScheduledTask(kind="prune")`` at the due time.
   When the beamline has an ``archive`` block and its source received the files in this run, a
   ``ScheduledTask(kind="archive")`` is scheduled ``after_days`` later.

**processing** (one per ``processing`` block):

1. ``stage``: copy ``stage_from -> input_endpoint`` when ``stage_from`` is set.
2. ``job/<kind>/<path>`` for each raw file and each job in order, through a
   :class:`~splash_core.domain.services.jobs.JobRunner`; the :class:`JobLayout` of the kind
   gives the job's parameters (full paths as the facility sees them) and expected outputs.
3. ``return/<endpoint>``: copy the outputs from ``output_endpoint`` to each ``return_to``.
4. ``ingest``: one derived record per raw file (``kind`` = the pipeline name, ``derived_from``
   = the raw batch's dataset key).
5. ``prune``: per ``retention`` entry. The copy that must stay verified is: for the output
   endpoint, the first ``return_to``; for a ``return_to`` endpoint, another ``return_to``, or
   else the output endpoint; for the input endpoint, ``stage_from``. An entry with no such copy
   is not scheduled (a warning says why): nothing is deleted without a verified copy elsewhere.

Job layouts specific to a beamline (tomography, ptychography) live in its module
(``bl832``, ``bl7012``); a beamline with no module runs every job kind with :data:`GENERIC_JOB`.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from functools import partial

import attrs

from splash_core.domain.errors import InvalidInput, SchedulerError, UnknownBeamline
from splash_core.domain.events import LocationVerified
from splash_core.domain.models import (
    CatalogRecord,
    Dataset,
    Endpoint,
    FileRecord,
    JobSpec,
    OutputSpec,
    RetentionPolicy,
    ScheduledTask,
    Site,
)
from splash_core.domain.paths import RelPath
from splash_core.domain.services.archive import ArchiveReport, ArchiveService, first_component
from splash_core.domain.services.dispatch import (
    NEW_FILE,
    Dispatcher,
    DispatchReport,
    DispatchRequest,
    PipelineEntry,
    PipelineInput,
)
from splash_core.domain.services.ingest import IngestService
from splash_core.domain.services.jobs import JobRunner
from splash_core.domain.services.move import MoveService
from splash_core.domain.services.pipeline import Pipeline, StepDetail
from splash_core.domain.services.prune import PruneReport, PruneService
from splash_core.domain.services.retry import RetryPolicy, call_with_retry
from splash_core.domain.settings import (
    BeamlineSettings,
    CopySettings,
    JobStepSettings,
    ProcessingSettings,
    Settings,
)
from splash_core.ports.catalog import CatalogPort
from splash_core.ports.clock import ClockPort
from splash_core.ports.hpc import HPCJobPort
from splash_core.ports.ledger import LedgerPort
from splash_core.ports.scheduler import SchedulerPort
from splash_core.ports.storage import StoragePort
from splash_core.ports.tape import TapeArchivePort
from splash_core.ports.transfer import TransferPort

logger = logging.getLogger(__name__)


# --- services ----------------------------------------------------------------


@attrs.frozen
class BeamlineServices:
    """The ports a beamline composition runs on, and the validated settings.

    ``hpc`` maps a facility name (``nersc``, ``alcf``) to its job port. ``tape`` may be None
    where no tape archive is configured. Job polling knobs are here so tests and the local
    facility can poll faster than production.
    """

    settings: Settings
    transfer: TransferPort
    storage: StoragePort
    hpc: Mapping[str, HPCJobPort]
    tape: TapeArchivePort | None
    catalog: CatalogPort
    scheduler: SchedulerPort
    ledger: LedgerPort
    clock: ClockPort
    job_poll_interval_s: float = 30.0
    job_not_found_grace_s: float = 300.0
    job_timeout_slack_s: float = 1800.0

    def endpoint(self, name: str) -> Endpoint:
        """The configured endpoint ``name`` (raises UnknownEndpoint)."""
        return self.settings.endpoint(name)

    def mover(self) -> MoveService:
        """A move service configured by the ``transfer`` settings."""
        return MoveService.from_settings(self.transfer, self.storage, self.ledger, self.clock, self.settings.transfer)

    def pruner(self) -> PruneService:
        """The prune service over every configured endpoint."""
        return PruneService(self.storage, self.ledger, self.clock, self.settings.endpoints)

    def ingester(self) -> IngestService:
        """The ingest service (catalog through the ledger's outbox)."""
        return IngestService(self.catalog, self.ledger, self.clock)

    def archiver(self) -> ArchiveService:
        """The tape archive service.

        Raises:
            InvalidInput: no tape adapter is configured.
        """
        if self.tape is None:
            raise InvalidInput("no tape archive is configured (adapters.tape); archiving is not possible")
        return ArchiveService(self.tape, self.ledger, self.catalog, self.clock)

    def job_runner(self, facility: str) -> JobRunner:
        """A job runner on ``facility``.

        Raises:
            InvalidInput: no HPC adapter is configured for the facility.
        """
        try:
            hpc = self.hpc[facility]
        except KeyError:
            known = ", ".join(sorted(self.hpc)) or "none"
            raise InvalidInput(
                f"no HPC adapter for facility {facility!r} (adapters.hpc.{facility}; configured: {known})"
            ) from None
        return JobRunner(
            hpc,
            self.storage,
            self.ledger,
            self.clock,
            self.settings.endpoints,
            poll_interval_s=self.job_poll_interval_s,
            not_found_grace_s=self.job_not_found_grace_s,
            timeout_slack_s=self.job_timeout_slack_s,
        )


# --- job layouts ---------------------------------------------------------------


@attrs.frozen
class JobContext:
    """What a job layout needs to parameterise one job for one raw file."""

    beamline: BeamlineSettings
    pipeline: str
    job: JobStepSettings
    raw: RelPath
    input_endpoint: Endpoint
    output_endpoint: Endpoint
    parameters: Mapping[str, object]

    @property
    def stem(self) -> str:
        """The raw file's name without its suffix."""
        return self.raw.stem


@attrs.frozen
class JobPlan:
    """A job's parameters, what it reads (for the ledger) and the outputs it must leave on the output endpoint."""

    parameters: Mapping[str, str]
    outputs: tuple[RelPath, ...]
    inputs: tuple[str, ...] = ()


@attrs.frozen
class JobLayout:
    """How one job kind is parameterised: ``plan`` builds it, ``accepts`` names the request parameters it takes."""

    plan: Callable[[JobContext], JobPlan]
    accepts: frozenset[str] = frozenset()


def job_parameters(ctx: JobContext, accepts: frozenset[str], **paths: str) -> dict[str, str]:
    """Job parameters: the given paths, the stem, the job's configured parameters, then accepted request ones."""
    parameters = {**paths, "stem": ctx.stem, **ctx.job.parameters}
    parameters.update({k: str(v) for k, v in ctx.parameters.items() if k in accepts})
    return parameters


def _generic_plan(ctx: JobContext) -> JobPlan:
    out = RelPath.parse(f"{ctx.stem}/{ctx.job.kind}")
    parameters = job_parameters(
        ctx,
        frozenset(),
        input=ctx.input_endpoint.full_path(ctx.raw),
        output_dir=ctx.output_endpoint.full_path(out),
    )
    return JobPlan(parameters, (out,), (ctx.raw.value,))


GENERIC_JOB = JobLayout(_generic_plan)
"""Any job kind without a layout: ``input`` (the raw file) and ``output_dir`` ``<stem>/<kind>/``."""


@attrs.frozen
class BeamlineModule:
    """What a beamline adds to its configuration block: job layouts and archive conventions.

    Args:
        id: the beamline id it is registered under (``generic`` for the fallback).
        description: what the beamline does (shown by the CLI).
        jobs: job kind -> layout; kinds without one use :data:`GENERIC_JOB`.
        proposal_of: the proposal a file belongs to, for tape bundles (first path component
            by default; an ``archive.proposal_depth`` of N picks component N instead).
    """

    id: str
    description: str = ""
    jobs: Mapping[str, JobLayout] = attrs.field(factory=dict)
    proposal_of: Callable[[RelPath], str] | None = None

    def layout(self, kind: str) -> JobLayout:
        """The layout of job ``kind``."""
        return self.jobs.get(kind, GENERIC_JOB)

    def proposal_function(self, beamline: BeamlineSettings) -> Callable[[RelPath], str]:
        """How this beamline's files map to proposals."""
        if self.proposal_of is not None:
            return self.proposal_of
        depth = beamline.archive.proposal_depth if beamline.archive is not None else 0
        if depth == 0:
            return first_component

        def component(path: RelPath) -> str:
            parts = path.parts
            if depth >= len(parts) - 1:
                raise InvalidInput(
                    f"{path} has no folder at depth {depth} (beamlines.{beamline.id}.archive.proposal_depth)"
                )
            return parts[depth]

        return component


GENERIC = BeamlineModule(id="generic", description="A beamline described by its configuration block alone.")
"""The fallback module: every job kind uses :data:`GENERIC_JOB`."""


# --- helpers -------------------------------------------------------------------


def _hop_step(hop: CopySettings) -> str:
    return f"copy/{hop.source}->{hop.destination}"


def _off_site(services: BeamlineServices, *names: str) -> list[str]:
    return [n for n in names if services.endpoint(n).off_site]


def _expand(services: BeamlineServices, endpoint: Endpoint, paths: Sequence[RelPath]) -> list[RelPath]:
    """The files ``paths`` stand for on ``endpoint`` (folders expanded), from the ledger's verified copies."""
    verified = services.ledger.verified_paths(endpoint.name)
    files: dict[RelPath, None] = {}
    for path in paths:
        if path in verified:
            files.setdefault(path, None)
            continue
        below = sorted(p for p in verified if p.is_relative_to(path))
        if below:
            files.update(dict.fromkeys(below))
            continue
        # not (yet) verified there: look at the storage itself
        if services.storage.stat(endpoint, path) is not None:
            files.setdefault(path, None)
        else:
            files.update(dict.fromkeys(r.path for r in services.storage.list(endpoint, path)))
    return list(files)


def _records(services: BeamlineServices, endpoint: Endpoint, files: Sequence[RelPath]) -> tuple[FileRecord, ...]:
    """What the catalog records of each file: size and, when the ledger has one, its checksum.

    A copy verified by a transfer service that reports no digest (Globus) is catalogued with
    its size and no checksum; splash never invents one. A file not verified on ``endpoint``
    is catalogued as it is stat'ed now (size, no checksum).
    """
    records = []
    without_digest: list[LocationVerified] = []
    for path in files:
        copy = services.ledger.verified_copy(endpoint.name, path)
        if copy is not None:
            if copy.checksum is None:
                without_digest.append(copy)
            records.append(FileRecord(path, copy.size, copy.checksum))
            continue
        stat = services.storage.stat(endpoint, path)
        if stat is None:
            raise InvalidInput(f"{path} is not on {endpoint.name} ({endpoint.full_path(path)}); cannot catalogue it")
        records.append(stat)
    if without_digest:
        logger.info(
            "cataloguing %d file(s) on %s with their size and no checksum: verified by %s, which reports no digest",
            len(without_digest),
            endpoint.name,
            ", ".join(sorted({c.verification for c in without_digest})),
        )
    return tuple(records)


def _location(endpoint: Endpoint, files: Sequence[RelPath]) -> str:
    if len(files) == 1:
        return endpoint.full_path(files[0])
    common = posixpath.commonpath([f.value for f in files]) if files else ""
    return endpoint.full_path(RelPath(common)) if common else endpoint.root_path


def run_key(services: BeamlineServices, beamline: BeamlineSettings, pipeline: str, paths: Sequence[RelPath]) -> str:
    """The pipeline run key of a batch: ``<beamline>/<pipeline>/<dataset key>-<version>``.

    The version fingerprints each path's size and mtime on the beamline's source endpoint, so a
    batch dispatched again unchanged resumes its run, while a file rewritten under the same name
    starts a new run (and is moved again) instead of being taken as done.
    """
    source = services.endpoint(beamline.source)
    version = hashlib.sha256()
    for path in sorted(set(paths)):
        record = call_with_retry(
            partial(services.storage.stat, source, path),
            policy=RetryPolicy(attempts=3),
            clock=services.clock,
            what=f"stat {path} on {source.name}",
        )
        if record is not None:
            version.update(f"{path.value}\0{record.size}\0{record.mtime}\n".encode("utf-8", "surrogateescape"))
    return f"{beamline.id}/{pipeline}/{Dataset(beamline.id, tuple(paths)).key}-{version.hexdigest()[:8]}"


def _ingest(services: BeamlineServices, record: CatalogRecord) -> dict[str, str]:
    catalog_id = services.ingester().ingest(record)
    if catalog_id is None:
        return {"dataset": record.dataset_key, "catalog": "queued in the outbox (catalog unreachable)"}
    return {"dataset": record.dataset_key, "catalog_id": catalog_id}


def _schedule(services: BeamlineServices, task: ScheduledTask) -> str:
    """Schedule ``task``; the ledger stays the source of truth, so a scheduler failure is only logged."""
    try:
        return services.scheduler.schedule(task)
    except SchedulerError as exc:
        logger.warning(
            "could not schedule %s run %s at %s (%s); it is in the ledger, run it with the next sweep",
            task.kind,
            task.key,
            task.run_at.isoformat(),
            exc,
        )
        return f"not scheduled: {exc}"


def _prune(
    services: BeamlineServices,
    policy: RetentionPolicy,
    files: Sequence[RelPath],
    *,
    beamline: str,
    pipeline: str,
    dataset: str,
) -> dict[str, str]:
    scheduled = services.pruner().schedule(policy.endpoint, files, policy)
    due = services.clock.now() + timedelta(days=policy.days)
    run = _schedule(
        services,
        ScheduledTask(
            kind="prune",
            run_at=due,
            key=f"prune/{beamline}/{pipeline}/{policy.endpoint}/{dataset}",
            payload={
                "beamline": beamline,
                "endpoint": policy.endpoint,
                "check_endpoint": policy.check_endpoint,
                "dataset": dataset,
                "pipeline": pipeline,
                "files": str(len(files)),
            },
        ),
    )
    return {f"prune/{policy.endpoint}": f"{len(scheduled)} new, due {due.isoformat()}, run {run}"}


# --- new file ----------------------------------------------------------------------


def route_retention(beamline: BeamlineSettings) -> tuple[RetentionPolicy, ...]:
    """The new-file route's retention (see :meth:`BeamlineSettings.retention_policies`)."""
    return beamline.retention_policies()


class NewFilePipeline:
    """Copy a batch along the beamline's route, catalogue it and schedule its prunes (see the module docstring)."""

    def __init__(self, beamline: BeamlineSettings, services: BeamlineServices) -> None:
        self.beamline = beamline
        self.services = services

    def hops(self, export_controlled: bool) -> list[CopySettings]:
        """The hops that run: enabled, and on site when the data is export-controlled."""
        hops = []
        for hop in self.beamline.copies:
            if not hop.enabled:
                logger.info("%s: hop %s -> %s is disabled", self.beamline.id, hop.source, hop.destination)
                continue
            off = _off_site(self.services, hop.source, hop.destination)
            if export_controlled and off:
                logger.info(
                    "%s: export-controlled data does not take hop %s -> %s (%s off site)",
                    self.beamline.id,
                    hop.source,
                    hop.destination,
                    ", ".join(off),
                )
                continue
            hops.append(hop)
        return hops

    def __call__(self, given: PipelineInput) -> StepDetail:
        """Run (or resume) the pipeline for ``given.paths``."""
        services, beamline = self.services, self.beamline
        dataset = Dataset(beamline.id, given.paths, given.export_controlled)
        pipe = Pipeline(services.ledger, services.clock, run_key(services, beamline, NEW_FILE, given.paths))
        mover = services.mover()
        hops = self.hops(given.export_controlled)
        delivered: dict[str, str] = {}  # endpoint -> step that delivered the batch there
        detail: dict[str, str] = {"dataset": dataset.key}
        for hop in hops:
            step = _hop_step(hop)
            feeding = delivered.get(hop.source)

            def copy(hop: CopySettings = hop) -> StepDetail:
                report = mover.move(
                    services.endpoint(hop.source),
                    services.endpoint(hop.destination),
                    given.paths,
                    label=f"{beamline.id} {hop.source}->{hop.destination}",
                    export_controlled=given.export_controlled,
                )
                return {
                    "verified": str(report.files),
                    "skipped": str(len(report.skipped)),
                    "tasks": ",".join(report.task_ids),
                }

            pipe.step(step, copy, depends_on=[feeding] if feeding else [])
            delivered.setdefault(hop.destination, step)
        copies = list(delivered.values())
        primary = services.endpoint(hops[0].destination if hops else beamline.source)

        def ingest() -> StepDetail:
            files = _expand(services, primary, given.paths)
            record = CatalogRecord(
                dataset_key=dataset.key,
                beamline=beamline.id,
                files=_records(services, primary, files),
                location=_location(primary, files),
                metadata={
                    "title": beamline.title,
                    "source": beamline.source,
                    "endpoint": primary.name,
                    "export_controlled": str(given.export_controlled).lower(),
                },
                kind="raw",
            )
            return _ingest(services, record)

        detail.update(pipe.step("ingest", ingest, depends_on=copies))

        def prune() -> StepDetail:
            files = _expand(services, primary, given.paths)
            scheduled: dict[str, str] = {}
            for policy in route_retention(beamline):
                if policy.check_endpoint not in delivered or not (
                    policy.endpoint in delivered or policy.endpoint == beamline.source
                ):
                    continue  # the copy that must be verified was not made in this run
                scheduled.update(
                    _prune(services, policy, files, beamline=beamline.id, pipeline=NEW_FILE, dataset=dataset.key)
                )
            archive = beamline.archive
            if archive is not None and archive.source in delivered:
                run_at = services.clock.now() + timedelta(days=archive.after_days)
                scheduled["archive"] = _schedule(
                    services,
                    ScheduledTask(
                        kind="archive",
                        run_at=run_at,
                        key=f"archive/{beamline.id}/{dataset.key}",
                        payload={
                            "beamline": beamline.id,
                            "source": archive.source,
                            "dataset": dataset.key,
                            "paths": "\n".join(p.value for p in files),
                        },
                    ),
                )
            return scheduled

        detail.update(pipe.step("prune", prune, depends_on=copies))
        return detail


# --- processing ------------------------------------------------------------------------


class ProcessingPipeline:
    """Stage, run the jobs, return the outputs, catalogue and schedule prunes (see the module docstring)."""

    def __init__(
        self,
        name: str,
        beamline: BeamlineSettings,
        processing: ProcessingSettings,
        services: BeamlineServices,
        module: BeamlineModule = GENERIC,
    ) -> None:
        self.name = name
        self.beamline = beamline
        self.processing = processing
        self.services = services
        self.module = module

    @property
    def accepts(self) -> frozenset[str]:
        """The request parameters some job of this pipeline takes."""
        return frozenset().union(*(self.module.layout(j.kind).accepts for j in self.processing.jobs))

    @property
    def off_site(self) -> bool:
        """Whether the pipeline sends data or runs jobs off site."""
        p = self.processing
        names = [p.input_endpoint, p.output_endpoint, *p.return_to, *([p.stage_from] if p.stage_from else [])]
        facility = self.services.settings.facilities.get(p.hpc)
        # a facility the configuration does not describe counts as off site
        facility_off = facility is None or facility.site is Site.OFF_SITE
        return facility_off or bool(_off_site(self.services, *names))

    def __call__(self, given: PipelineInput) -> StepDetail:
        """Run (or resume) the pipeline for ``given.paths``."""
        services, beamline, p = self.services, self.beamline, self.processing
        raw_key = Dataset(beamline.id, given.paths, given.export_controlled).key
        pipe = Pipeline(services.ledger, services.clock, run_key(services, beamline, self.name, given.paths))
        mover = services.mover()
        input_ep, output_ep = services.endpoint(p.input_endpoint), services.endpoint(p.output_endpoint)
        label = f"{beamline.id} {self.name}"
        detail: dict[str, str] = {"dataset": raw_key}

        staged = p.stage_from is not None and p.stage_from != p.input_endpoint
        if staged and p.stage_from is not None:
            stage_from = services.endpoint(p.stage_from)

            def stage() -> StepDetail:
                report = mover.move(
                    stage_from, input_ep, given.paths, label=f"{label} stage", export_controlled=given.export_controlled
                )
                return {"verified": str(report.files), "tasks": ",".join(report.task_ids)}

            pipe.step("stage", stage)
        raws = _expand(services, input_ep, given.paths)

        runner = services.job_runner(p.hpc)
        outputs: dict[RelPath, list[RelPath]] = {}
        previous: list[str] = ["stage"] if staged else []
        for raw in raws:
            for job in p.jobs:
                layout = self.module.layout(job.kind)
                ctx = JobContext(beamline, self.name, job, raw, input_ep, output_ep, given.parameters)
                plan = layout.plan(ctx)
                step = f"job/{job.kind}/{raw}"
                spec = JobSpec(
                    name=f"{beamline.id}-{self.name}-{job.kind}-{raw.stem}",
                    kind=job.kind,
                    parameters=plan.parameters,
                    expected_outputs=tuple(OutputSpec(p.output_endpoint, o) for o in plan.outputs),
                    time_limit_s=job.time_limit_minutes * 60.0,
                    idempotency_key=f"{pipe.key(step)}/job",
                )

                def run_job(spec: JobSpec = spec, plan: JobPlan = plan) -> StepDetail:
                    status = runner.run(spec, inputs=plan.inputs)
                    return {"job_id": status.job_id, "state": status.state.value}

                pipe.step(step, run_job, depends_on=previous[-1:])
                previous.append(step)
                outputs.setdefault(raw, []).extend(plan.outputs)
        jobs_done = previous[1:] if staged else previous
        all_outputs = [o for outs in outputs.values() for o in outs]

        returned: list[str] = []
        for name in p.return_to:
            if name == p.output_endpoint:
                continue
            destination = services.endpoint(name)

            def send_back(destination: Endpoint = destination) -> StepDetail:
                report = mover.move(
                    output_ep,
                    destination,
                    all_outputs,
                    label=f"{label} return",
                    export_controlled=given.export_controlled,
                )
                return {"verified": str(report.files), "tasks": ",".join(report.task_ids)}

            pipe.step(f"return/{name}", send_back, depends_on=jobs_done)
            returned.append(name)
        home = services.endpoint(returned[0]) if returned else output_ep
        after = [f"return/{n}" for n in returned] or jobs_done

        def ingest() -> StepDetail:
            ids: dict[str, str] = {}
            for raw, outs in outputs.items():
                files = _expand(services, home, outs)
                record = CatalogRecord(
                    dataset_key=Dataset(f"{beamline.id}/{self.name}", tuple(outs)).key,
                    beamline=beamline.id,
                    files=_records(services, home, files),
                    location=home.full_path(outs[0].parent or outs[0]),
                    metadata={"pipeline": self.name, "raw": raw.value, "endpoint": home.name},
                    derived_from=(raw_key,),
                    kind=self.name,
                )
                result = _ingest(services, record)
                ids[f"ingest/{raw}"] = result.get("catalog_id", result.get("catalog", ""))
            return ids

        detail.update(pipe.step("ingest", ingest, depends_on=after))

        def prune() -> StepDetail:
            scheduled: dict[str, str] = {}
            for endpoint, days in p.retention.items():
                check = self._check_endpoint(endpoint, returned)
                if check is None:
                    logger.warning(
                        "%s %s: no verified copy elsewhere to check before pruning %s "
                        "(beamlines.%s.processing.%s.retention.%s); not scheduled",
                        beamline.id,
                        self.name,
                        endpoint,
                        beamline.id,
                        self.name,
                        endpoint,
                    )
                    scheduled[f"prune/{endpoint}"] = "not scheduled: no copy to check against"
                    continue
                ep = services.endpoint(endpoint)
                files = _expand(services, ep, given.paths if endpoint == p.input_endpoint else all_outputs)
                policy = RetentionPolicy(endpoint=endpoint, days=days, check_endpoint=check)
                scheduled.update(
                    _prune(services, policy, files, beamline=beamline.id, pipeline=self.name, dataset=raw_key)
                )
            return scheduled

        detail.update(pipe.step("prune", prune, depends_on=after))
        return detail

    def _check_endpoint(self, endpoint: str, returned: Sequence[str]) -> str | None:
        p = self.processing
        if endpoint == p.output_endpoint:
            return returned[0] if returned else None
        if endpoint in returned:
            others = [r for r in returned if r != endpoint]
            return others[0] if others else p.output_endpoint
        if endpoint == p.input_endpoint and p.stage_from is not None and p.stage_from != endpoint:
            return p.stage_from
        return None


# --- dispatcher and scheduled tasks -----------------------------------------------------------


def build_dispatcher(
    beamline: BeamlineSettings, services: BeamlineServices, module: BeamlineModule = GENERIC
) -> Dispatcher:
    """The dispatcher of ``beamline``: ``new_file`` plus one pipeline per ``processing`` block.

    Raises:
        UnknownEndpoint: the beamline names an endpoint the configuration lacks.
    """
    for hop in beamline.copies:
        services.endpoint(hop.source)
        services.endpoint(hop.destination)
    pipelines: dict[str, PipelineEntry] = {
        NEW_FILE: PipelineEntry(
            run=NewFilePipeline(beamline, services),
            description=f"{beamline.id}: copy along {len(beamline.copies)} hop(s), catalogue, schedule prunes",
        )
    }
    for name, processing in beamline.processing.items():
        pipeline = ProcessingPipeline(name, beamline, processing, services, module)
        pipelines[name] = PipelineEntry(
            run=pipeline,
            accepts=pipeline.accepts,
            off_site=pipeline.off_site,
            description=f"{beamline.id}: {', '.join(j.kind for j in processing.jobs)} on {processing.hpc}",
        )
    return Dispatcher(pipelines, beamline_id=beamline.id)


def run_archive(
    beamline: BeamlineSettings,
    services: BeamlineServices,
    paths: Sequence[RelPath],
    module: BeamlineModule = GENERIC,
) -> ArchiveReport:
    """Archive ``paths`` from the beamline's ``archive.source`` to tape.

    Raises:
        InvalidInput: the beamline has no ``archive`` block or no tape adapter is configured.
    """
    if beamline.archive is None:
        raise InvalidInput(f"beamline {beamline.id} has no archive block (beamlines.{beamline.id}.archive)")
    source = services.endpoint(beamline.archive.source)
    return services.archiver().archive(source, paths, proposal_of=module.proposal_function(beamline))


def close_prune_tasks(services: BeamlineServices, report: PruneReport, tasks: Sequence[ScheduledTask]) -> None:
    """Mark scheduled prune tasks done unless the run refused something on their endpoint.

    The ledger decides what is deleted; a task left open only makes the scheduler run prune again.
    """
    refused = {r.endpoint for r in report.refused}
    for task in tasks:
        if task.kind == "prune" and task.payload.get("endpoint") not in refused:
            services.scheduler.mark_done(task.key)


def run_scheduled(
    task: ScheduledTask,
    services: BeamlineServices,
    modules: Callable[[str], BeamlineModule] = lambda _id: GENERIC,
) -> PruneReport | ArchiveReport:
    """Carry out a task the new-file pipeline scheduled (``prune`` or ``archive``) and mark it done.

    A prune task runs every prune due now (the ledger decides what is due and safe). The task is
    marked done only when nothing of it failed, so the scheduler tries again otherwise.

    Raises:
        InvalidInput: an unknown task kind or a payload without what it needs.
        UnknownBeamline: the task names a beamline that is not configured.
    """
    if task.kind == "prune":
        pruned = services.pruner().run_due()
        close_prune_tasks(services, pruned, [task])
        return pruned
    if task.kind != "archive":
        raise InvalidInput(f"scheduled task {task.key} has kind {task.kind!r}; splash runs 'prune' and 'archive'")
    beamline_id = task.payload.get("beamline", "")
    if beamline_id not in services.settings.beamlines:
        raise UnknownBeamline(f"scheduled archive {task.key} names beamline {beamline_id!r}, which is not configured")
    paths = [RelPath.parse(p) for p in task.payload.get("paths", "").splitlines() if p]
    if not paths:
        raise InvalidInput(f"scheduled archive {task.key} lists no paths")
    archived = run_archive(services.settings.beamline(beamline_id), services, paths, modules(beamline_id))
    if archived.ok:
        services.scheduler.mark_done(task.key)
    return archived


def dispatch_paths(
    dispatcher: Dispatcher,
    beamline: BeamlineSettings,
    paths: Sequence[str | RelPath],
    *,
    export_controlled: bool = False,
    parameters: Mapping[str, object] | None = None,
) -> DispatchReport:
    """Parse ``paths`` and dispatch them (a convenience for entrypoints).

    Raises:
        InvalidPath: a path is not a valid relative path; nothing ran.
    """
    parsed = tuple(p if isinstance(p, RelPath) else RelPath.parse(p) for p in paths)
    return dispatcher.dispatch(DispatchRequest(beamline, parsed, export_controlled, dict(parameters or {})))


__all__ = [
    "GENERIC",
    "GENERIC_JOB",
    "BeamlineModule",
    "BeamlineServices",
    "JobContext",
    "JobLayout",
    "JobPlan",
    "NewFilePipeline",
    "ProcessingPipeline",
    "build_dispatcher",
    "close_prune_tasks",
    "dispatch_paths",
    "job_parameters",
    "route_retention",
    "run_archive",
    "run_key",
    "run_scheduled",
]
