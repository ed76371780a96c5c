"""The dispatcher: validate a batch of new paths, run ``new_file`` first, then processing concurrently.

Which pipelines run is the beamline's ``decisions`` (``new_file`` is on unless switched off,
every other pipeline is off unless switched on). Each pipeline gets only the parameters it
declares. Export-controlled data never goes off site: a pipeline that would send it there is
skipped here, and the moves refuse it again on their own.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import attrs

from splash_core.domain.errors import ConfigError, InvalidInput, SplashError, UnknownBeamline
from splash_core.domain.paths import RelPath
from splash_core.domain.settings import BeamlineSettings

logger = logging.getLogger(__name__)

NEW_FILE = "new_file"
"""The name of the pipeline that moves, catalogues and schedules prunes of new files."""


@attrs.frozen
class DispatchRequest:
    """A batch of new paths (relative to the beamline's source endpoint) to dispatch."""

    beamline: BeamlineSettings
    paths: tuple[RelPath, ...]
    export_controlled: bool = False
    parameters: Mapping[str, object] = attrs.field(factory=dict)


@attrs.frozen
class PipelineInput:
    """What one pipeline is given: the request with only the parameters it declares."""

    beamline: BeamlineSettings
    paths: tuple[RelPath, ...]
    export_controlled: bool
    parameters: Mapping[str, object]


PipelineRun = Callable[[PipelineInput], "Mapping[str, str] | None"]
"""Runs a pipeline; returns a detail to report, raises when the pipeline failed."""


@attrs.frozen
class PipelineEntry:
    """A pipeline the dispatcher can run.

    ``accepts`` names the request parameters it takes. ``off_site`` says it sends data (or runs
    jobs) off site, so it is skipped for export-controlled data.
    """

    run: PipelineRun
    accepts: frozenset[str] = frozenset()
    off_site: bool = False
    description: str = ""


class OutcomeState(enum.Enum):
    """How a pipeline of a dispatch ended."""

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    NOT_RUN = "not-run"


@attrs.frozen
class PipelineOutcome:
    """One pipeline's outcome; ``error`` when it failed, ``reason`` when it was skipped or not run."""

    name: str
    state: OutcomeState
    error: str | None = None
    reason: str | None = None
    detail: Mapping[str, str] = attrs.field(factory=dict)

    def __str__(self) -> str:
        text = f"{self.name}: {self.state.value}"
        extra = self.error or self.reason
        return f"{text} ({extra})" if extra else text


@attrs.frozen
class DispatchReport:
    """Every requested pipeline's outcome, ``new_file`` first."""

    beamline: str
    paths: tuple[RelPath, ...]
    outcomes: tuple[PipelineOutcome, ...]

    @property
    def ok(self) -> bool:
        """True when no pipeline failed or was left unrun (export-control skips are fine)."""
        return all(o.state in (OutcomeState.OK, OutcomeState.SKIPPED) for o in self.outcomes)

    @property
    def failed(self) -> tuple[PipelineOutcome, ...]:
        """The outcomes of pipelines that failed."""
        return tuple(o for o in self.outcomes if o.state is OutcomeState.FAILED)

    def outcome(self, name: str) -> PipelineOutcome | None:
        """The outcome of pipeline ``name``, or None if it was not requested."""
        return next((o for o in self.outcomes if o.name == name), None)


class Dispatcher:
    """Run a beamline's enabled pipelines for a batch of paths.

    Args:
        pipelines: name -> entry; ``new_file`` is the one that runs first.
        beamline_id: when given, requests for another beamline are refused.
        max_workers: threads for the processing pipelines (default: one each).
    """

    def __init__(
        self,
        pipelines: Mapping[str, PipelineEntry],
        *,
        beamline_id: str | None = None,
        max_workers: int | None = None,
    ) -> None:
        self._pipelines = dict(pipelines)
        self._beamline_id = beamline_id
        self._max_workers = max_workers

    @property
    def pipelines(self) -> Mapping[str, PipelineEntry]:
        """Every pipeline this dispatcher knows, by name."""
        return self._pipelines

    def accepted_parameters(self) -> frozenset[str]:
        """Every parameter some pipeline declares."""
        return frozenset().union(*(e.accepts for e in self._pipelines.values()))

    def enabled(self, beamline: BeamlineSettings) -> tuple[str, ...]:
        """The pipelines the beamline's decisions switch on, ``new_file`` first.

        Raises:
            ConfigError: a decision switches on a pipeline this dispatcher does not have.
        """
        names: list[str] = []
        if beamline.decisions.get(NEW_FILE, True):
            names.append(NEW_FILE)
        names.extend(n for n, on in beamline.decisions.items() if on and n != NEW_FILE)
        unknown = [n for n in names if n not in self._pipelines]
        if unknown:
            problems = tuple(
                f"beamlines.{beamline.id}.decisions.{n}: no pipeline of that name "
                f"(known: {', '.join(sorted(self._pipelines)) or 'none'})"
                for n in unknown
            )
            raise ConfigError(problems[0], problems)
        return tuple(names)

    def dispatch(self, request: DispatchRequest) -> DispatchReport:
        """Run ``new_file``, then (only if it succeeded) the enabled processing pipelines concurrently.

        Raises:
            InvalidInput: no paths, a path that is not a ``RelPath``, an unknown parameter, or a
                non-boolean export-control flag; nothing ran.
            UnknownBeamline: the request is for another beamline than this dispatcher's.
            ConfigError: a decision names a pipeline that does not exist; nothing ran.
        """
        paths = self._validate(request)
        beamline = request.beamline
        names = self.enabled(beamline)
        outcomes: list[PipelineOutcome] = []
        processing = [n for n in names if n != NEW_FILE]
        if NEW_FILE in names:
            first = self._run(NEW_FILE, request, paths)
            outcomes.append(first)
            if first.state is not OutcomeState.OK:
                reason = f"not run: {NEW_FILE} failed for {beamline.id} ({_where(paths)})"
                outcomes.extend(PipelineOutcome(n, OutcomeState.NOT_RUN, reason=reason) for n in processing)
                return DispatchReport(beamline.id, paths, tuple(outcomes))
        runnable: list[str] = []
        skipped: dict[str, PipelineOutcome] = {}
        for name in processing:
            entry = self._pipelines[name]
            if request.export_controlled and entry.off_site:
                reason = (
                    f"skipped: export-controlled; {name} would send {_where(paths)} off site, "
                    "which export-controlled data never does"
                )
                logger.warning("%s: %s", beamline.id, reason)
                skipped[name] = PipelineOutcome(name, OutcomeState.SKIPPED, reason=reason)
            else:
                runnable.append(name)
        results: dict[str, PipelineOutcome] = {}
        if runnable:
            workers = self._max_workers or len(runnable)
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{beamline.id}-dispatch") as pool:
                futures = {n: pool.submit(self._run, n, request, paths) for n in runnable}
                results = {n: f.result() for n, f in futures.items()}
        outcomes.extend(skipped[n] if n in skipped else results[n] for n in processing)
        return DispatchReport(beamline.id, paths, tuple(outcomes))

    # --- internals ---------------------------------------------------------

    def _validate(self, request: DispatchRequest) -> tuple[RelPath, ...]:
        beamline = request.beamline
        if not isinstance(beamline, BeamlineSettings):
            raise InvalidInput(f"dispatch needs the beamline's settings, got {type(beamline).__name__}")
        if self._beamline_id is not None and beamline.id != self._beamline_id:
            raise UnknownBeamline(
                f"this dispatcher is for beamline {self._beamline_id!r}, not {beamline.id!r}; "
                "build the dispatcher of that beamline"
            )
        if not isinstance(request.export_controlled, bool):
            raise InvalidInput(
                f"export_controlled must be true or false, got {request.export_controlled!r}; when in doubt, say true"
            )
        if not request.paths:
            raise InvalidInput(f"no paths to dispatch for beamline {beamline.id}; give at least one file")
        seen: dict[RelPath, None] = {}
        for path in request.paths:
            if not isinstance(path, RelPath):
                raise InvalidInput(
                    f"path {path!r} for beamline {beamline.id} is not a RelPath; parse it with RelPath.parse()"
                )
            seen.setdefault(path, None)
        accepted = self.accepted_parameters()
        unknown = sorted(str(k) for k in request.parameters if k not in accepted)
        if unknown:
            raise InvalidInput(
                f"unknown parameter(s) {', '.join(unknown)} for beamline {beamline.id}; "
                f"accepted: {', '.join(sorted(accepted)) or 'none'}"
            )
        return tuple(seen)

    def _run(self, name: str, request: DispatchRequest, paths: tuple[RelPath, ...]) -> PipelineOutcome:
        entry = self._pipelines[name]
        given = PipelineInput(
            beamline=request.beamline,
            paths=paths,
            export_controlled=request.export_controlled,
            parameters={k: v for k, v in request.parameters.items() if k in entry.accepts},
        )
        try:
            detail = entry.run(given)
        except SplashError as exc:
            logger.error("%s: pipeline %s failed for %s: %s", request.beamline.id, name, _where(paths), exc)
            return PipelineOutcome(name, OutcomeState.FAILED, error=f"{name} failed for {_where(paths)}: {exc}")
        except Exception as exc:  # a bug in one pipeline must not hide the others' outcomes
            logger.exception("%s: pipeline %s crashed for %s", request.beamline.id, name, _where(paths))
            return PipelineOutcome(
                name,
                OutcomeState.FAILED,
                error=f"{name} crashed for {_where(paths)}: {type(exc).__name__}: {exc}",
            )
        return PipelineOutcome(name, OutcomeState.OK, detail=dict(detail or {}))


def _where(paths: tuple[RelPath, ...]) -> str:
    if len(paths) == 1:
        return str(paths[0])
    return f"{len(paths)} paths from {paths[0]}"


__all__ = [
    "NEW_FILE",
    "DispatchReport",
    "DispatchRequest",
    "Dispatcher",
    "OutcomeState",
    "PipelineEntry",
    "PipelineInput",
    "PipelineOutcome",
    "PipelineRun",
]
