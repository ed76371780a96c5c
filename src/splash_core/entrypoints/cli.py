"""The ``splash`` command line.

Exit codes everywhere: 0 ok, 1 a step failed, 2 bad input or usage. Errors go to
stderr, one clear sentence first. The configuration is found by ``--config``,
then ``SPLASH_CONFIG``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from splash_core.domain.errors import ConfigError, InvalidInput, SplashError

if TYPE_CHECKING:
    from splash_core.domain.services.dispatch import DispatchReport
    from splash_core.domain.services.move import MoveReport
    from splash_core.entrypoints.api import FlightReport, PruneRun, ReconcileReport, Splash

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

app = typer.Typer(
    name="splash",
    help="Move beamline data safely: verified transfers, HPC processing, catalog, tape, retention.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect and validate configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

out = Console()
err = Console(stderr=True, highlight=False)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="configuration file (default: $SPLASH_CONFIG)", show_default=False),
]

T = TypeVar("T")


def fail(message: str, code: int = EXIT_FAILED, details: tuple[str, ...] = ()) -> NoReturn:
    """Print ``message`` (and details) to stderr and exit with ``code``."""
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    for line in details:
        err.print(f"  - {line}", soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def errors_to_exit() -> Iterator[None]:
    """Turn splash errors into exit codes: 2 for bad input, 1 for failed steps."""
    try:
        yield
    except ConfigError as exc:
        problems = exc.problems if len(exc.problems) > 1 else ()
        fail(str(exc), EXIT_USAGE, problems)
    except InvalidInput as exc:
        fail(str(exc), EXIT_USAGE)
    except SplashError as exc:
        fail(str(exc), EXIT_FAILED)


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn`` with :func:`errors_to_exit`."""
    with errors_to_exit():
        return fn()


@config_app.command("check")
def config_check(
    config: ConfigOption = None,
    skip_secrets: Annotated[bool, typer.Option("--skip-secrets", help="do not check that secrets can be read")] = False,
) -> None:
    """Validate a configuration file; exit 0 when valid, 2 listing every problem."""
    from splash_core.entrypoints.config import find_config, load_settings

    def run() -> None:
        from splash_core.entrypoints.container import adapter_option_problems

        path = find_config(config)
        settings = load_settings(path, check_secrets=not skip_secrets)
        problems = adapter_option_problems(settings)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise ConfigError(f"configuration {path} is invalid: {problems[0]}{more}", tuple(problems))
        out.print(
            f"[green]ok[/]: {path} is valid — {len(settings.facilities)} facilities, "
            f"{len(settings.endpoints)} endpoints, {len(settings.beamlines)} beamlines "
            f"({', '.join(sorted(settings.beamlines))})"
        )

    guarded(run)


@config_app.command("show-example")
def config_show_example() -> None:
    """Print the shipped production example configuration."""
    from splash_core.entrypoints.profiles import production_template

    sys.stdout.write(production_template())


@app.command("init")
def init(
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="folder for the local facility")],
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing splash.yaml")] = False,
) -> None:
    """Write WORKSPACE/splash.yaml for the embedded local facility and create its folders."""
    from splash_core.entrypoints.profiles import write_local_profile

    path = guarded(lambda: write_local_profile(workspace, force=force))
    out.print(f"wrote {path}")
    out.print(f"use it with: export SPLASH_CONFIG={path}")


# --- operations -------------------------------------------------------------------


def _open(config: Path | None) -> Splash:
    from splash_core.entrypoints.api import open_config

    return open_config(config)


def _parse_params(values: list[str]) -> dict[str, object]:
    params: dict[str, object] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--param {item!r}: expected KEY=VALUE")
        params[key.strip()] = value
    return params


def _print_dispatch(report: DispatchReport) -> None:
    table = Table(title=f"{report.beamline}: {len(report.paths)} file(s)", show_lines=False)
    table.add_column("pipeline")
    table.add_column("state")
    table.add_column("detail", overflow="fold")
    colours = {"ok": "green", "failed": "red", "skipped": "yellow", "not-run": "yellow"}
    for outcome in report.outcomes:
        state = outcome.state.value
        detail = outcome.error or outcome.reason or ", ".join(f"{k}: {v}" for k, v in outcome.detail.items())
        table.add_row(outcome.name, f"[{colours.get(state, 'white')}]{state}[/]", detail)
    out.print(table)


@app.command("dispatch")
def dispatch_command(
    beamline: Annotated[str, typer.Argument(help="beamline id, e.g. bl832, bl733, bl7012")],
    paths: Annotated[list[str], typer.Argument(help="files or folders relative to the beamline's source endpoint")],
    export_controlled: Annotated[
        bool, typer.Option("--export-controlled", help="the data must never leave the site")
    ] = False,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="KEY=VALUE passed to the pipelines that take it")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Run a beamline's pipelines (new-file first, then enabled processing) for a batch of files."""

    def run() -> DispatchReport:
        splash = _open(config)
        with err.status(f"dispatching {len(paths)} path(s) for {beamline} ..."):
            return splash.dispatch(
                beamline, paths, export_controlled=export_controlled, parameters=_parse_params(param or []), check=True
            )

    report = guarded(run)
    _print_dispatch(report)
    if not report.ok:
        first = report.failed[0] if report.failed else report.outcomes[-1]
        fail(f"{beamline}: pipeline {first}", EXIT_FAILED)


@app.command("move")
def move_command(
    source: Annotated[str, typer.Argument(help="source endpoint name")],
    destination: Annotated[str, typer.Argument(help="destination endpoint name")],
    paths: Annotated[list[str], typer.Argument(help="files or folders relative to the source root")],
    export_controlled: Annotated[
        bool, typer.Option("--export-controlled", help="refuse an off-site destination")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Copy files between two endpoints as one batch and verify every copy (size + checksum)."""

    def run() -> MoveReport:
        splash = _open(config)
        with err.status(f"moving {len(paths)} path(s) {source} -> {destination} ..."):
            return splash.move(source, destination, paths, export_controlled=export_controlled)

    report = guarded(run)
    table = Table(title=f"{report.source} -> {report.destination}")
    table.add_column("path", overflow="fold")
    table.add_column("size", justify="right")
    table.add_column("checksum", overflow="fold")
    table.add_column("verified by")
    for event in report.verified:
        table.add_row(event.path.value, f"{event.size:,}", event.checksum_text, event.verification)
    for skipped in report.skipped:
        table.add_row(skipped.value, "", "already verified there", "ledger")
    out.print(table)
    out.print(
        f"{report.files} copied and verified, {len(report.skipped)} already there; "
        f"{report.tasks_created} transfer task(s), {report.bytes_transferred:,} bytes in {report.seconds:.2f} s"
    )


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"--at {value!r}: expected an ISO-8601 time such as 2027-01-31T12:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("prune")
def prune_command(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report what would be deleted; change nothing")] = False,
    at: Annotated[
        str | None, typer.Option("--at", help="act as if it were this ISO-8601 time (UTC if no zone)")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Delete files whose retention has ended and whose copy elsewhere verifies again right now."""

    def run() -> PruneRun:
        when = _parse_time(at)
        splash = _open(config)
        return splash.prune(at=when, dry_run=dry_run)

    result = guarded(run)
    report = result.report
    table = Table(title=f"prune at {report.at.isoformat()}" + (" (dry run)" if dry_run else ""))
    table.add_column("action")
    table.add_column("endpoint")
    table.add_column("path", overflow="fold")
    table.add_column("why", overflow="fold")
    for done in report.deleted:
        table.add_row("[green]deleted[/]", done.endpoint, done.path.value, f"copy verified on {done.copy_endpoint}")
    for due in report.would_delete:
        table.add_row("[cyan]would delete[/]", due.endpoint, due.path.value, f"copy on {due.check_endpoint}")
    for gone in report.already_gone:
        table.add_row("already gone", gone.endpoint, gone.path.value, f"copy on {gone.check_endpoint}")
    for refused in report.refused:
        table.add_row("[red]kept[/]", refused.endpoint, refused.path.value, refused.reason)
    out.print(table)
    out.print(
        f"{len(report.deleted)} deleted, {len(report.would_delete)} would be deleted, "
        f"{len(report.refused)} kept (refused), {len(report.already_gone)} already gone; "
        f"catalog outbox: {result.ingests_flushed} sent, {result.ingests_pending} pending"
    )
    if report.refused:
        fail(f"{len(report.refused)} due file(s) were kept because a check failed; see the reasons above")


@app.command("reconcile")
def reconcile_command(
    beamline: Annotated[str, typer.Argument(help="beamline id")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what was missed; dispatch nothing")] = False,
    config: ConfigOption = None,
) -> None:
    """Dispatch files that arrived on a beamline's source while nothing was running."""

    def run() -> ReconcileReport:
        splash = _open(config)
        with err.status(f"reconciling {beamline} ..."):
            return splash.reconcile(beamline, dry_run=dry_run)

    report = guarded(run)
    out.print(
        f"{len(report.missing)} file(s) on {report.source} have no verified copy on {report.destination}"
        + (" (dry run: nothing dispatched)" if dry_run else "")
    )
    for path in report.missing[:50]:
        out.print(f"  {path}")
    if len(report.missing) > 50:
        out.print(f"  ... and {len(report.missing) - 50} more")
    failed = [r for r in report.dispatched if not r.ok]
    for r in report.dispatched:
        _print_dispatch(r)
    if failed:
        fail(f"{len(failed)} of {len(report.dispatched)} reconcile batch(es) failed; see above")


@app.command("status")
def status_command(
    path: Annotated[str, typer.Argument(help="a path relative to an endpoint root")],
    config: ConfigOption = None,
) -> None:
    """Show a file's history: locations and verifications, jobs, catalog id, pending prunes."""
    status = guarded(lambda: _open(config).status(path))
    if not status.events:
        out.print(f"the ledger has no record of {status.path}")
        return
    table = Table(title=f"locations of {status.path}")
    table.add_column("endpoint")
    table.add_column("size", justify="right")
    table.add_column("checksum", overflow="fold")
    table.add_column("verified by")
    table.add_column("at")
    for loc in status.locations:
        table.add_row(loc.endpoint, f"{loc.size:,}", loc.checksum_text, loc.verification, loc.at.isoformat())
    out.print(table)
    for job in status.jobs:
        seconds = f"{job.seconds:.1f} s" if job.seconds is not None else "?"
        out.print(
            f"job {job.job_id} ({job.name}) on {job.facility}: {job.state.value}, exit {job.exit_code}, {seconds}"
        )
    for catalog_id in status.catalog_ids:
        out.print(f"catalog id: {catalog_id}")
    for prune in status.pending_prunes:
        out.print(
            f"prune pending: {prune.endpoint} from {prune.due_at.isoformat()} (once {prune.check_endpoint} verifies)"
        )
    out.print(f"{len(status.events)} ledger event(s)")


@app.command("flight-check")
def flight_check_command(
    route: Annotated[str, typer.Argument(help="a route name under flight_checks in the config")],
    config: ConfigOption = None,
) -> None:
    """Send a small probe file along a configured route and report each hop's time and verification."""

    def run() -> FlightReport:
        splash = _open(config)
        with err.status(f"flight check {route} ..."):
            return splash.flight_check(route)

    report = guarded(run)
    table = Table(title=f"flight check {report.route}")
    table.add_column("hop")
    table.add_column("seconds", justify="right")
    table.add_column("size", justify="right")
    table.add_column("checksum", overflow="fold")
    table.add_column("verified by")
    for hop in report.hops:
        table.add_row(
            f"{hop.source} -> {hop.destination}", f"{hop.seconds:.2f}", f"{hop.size:,}", hop.checksum, hop.verified_by
        )
    out.print(table)


@app.command("demo")
def demo_command(
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="folder for the demo's local facility")] = Path(
        "splash-demo"
    ),
    size: Annotated[int, typer.Option("--size", min=32, max=1024, help="detector width of the synthetic scan")] = 128,
    slices: Annotated[int, typer.Option("--slices", min=1, max=256, help="slices in the synthetic scan")] = 16,
) -> None:
    """Run beamline 8.3.2 end to end on this machine: scan, copies, reconstruction, OME-Zarr, catalog, prunes."""
    from splash_core.entrypoints.demo import run_demo

    code = guarded(lambda: run_demo(workspace, size=size, slices=slices, console=out))
    raise typer.Exit(code)


# --- Prefect and the file watcher (their modules import prefect and watchfiles only when run) ---

from splash_core.entrypoints.prefect.cli import prefect_app  # noqa: E402 - registered after the core commands
from splash_core.entrypoints.watch import watch  # noqa: E402

app.add_typer(prefect_app, name="prefect")
app.command("watch")(watch)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
