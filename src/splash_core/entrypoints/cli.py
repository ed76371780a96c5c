"""The ``splash`` command line.

Exit codes everywhere: 0 ok, 1 a step failed, 2 bad input or usage. Errors go to
stderr, one clear sentence first. The configuration is found by ``--config``,
then ``SPLASH_CONFIG``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console

from splash_core.domain.errors import ConfigError, InvalidInput, SplashError

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
        path = find_config(config)
        settings = load_settings(path, check_secrets=not skip_secrets)
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


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
