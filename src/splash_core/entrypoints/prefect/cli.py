"""``splash prefect ...``: deploy a beamline's work pools and deployments, write its prefect.yaml.

Prefect is imported only when a command runs, so ``splash --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from splash_core.entrypoints.prefect.deploy import Change, DeployPlan

prefect_app = typer.Typer(
    help="Run splash with Prefect: work pools, deployments (one set per beamline), prefect.yaml.",
    no_args_is_help=True,
)

BeamlineArgument = Annotated[str, typer.Argument(help="beamline id, e.g. bl733")]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="configuration file (default: $SPLASH_CONFIG)", show_default=False),
]


def _plan(beamline: str, config: Path | None) -> tuple[DeployPlan, str | None]:
    from splash_core.entrypoints.config import find_config, load_settings
    from splash_core.entrypoints.prefect.deploy import plan_deployments
    from splash_core.entrypoints.prefect.options import prefect_options

    path = find_config(config).expanduser().resolve()
    settings = load_settings(path, check_secrets=False)
    options = prefect_options(settings)
    return plan_deployments(settings, beamline, path, options), options.api_url


def _show_plan(plan: DeployPlan) -> None:
    from splash_core.entrypoints.cli import out

    for pool in plan.pools:
        out.print(f"work pool {pool.name} (type {pool.type}): {pool.description}")
    for spec in plan.deployments:
        when = f", {spec.schedule}" if spec.schedule else ""
        out.print(f"deployment {spec.full_name} -> pool {spec.pool}{when}: {spec.entrypoint}", soft_wrap=True)


def _show_changes(plan: DeployPlan, changes: list[Change]) -> None:
    from splash_core.entrypoints.cli import out

    for change in changes:
        colour = {"created": "green", "updated": "yellow"}.get(change.action, "dim")
        out.print(f"[{colour}]{change}[/]", soft_wrap=True)
    counts = {a: sum(1 for c in changes if c.action == a) for a in ("created", "updated", "unchanged")}
    if counts["unchanged"] == len(changes):
        out.print(
            f"nothing changed: {len(plan.pools)} work pools and {len(plan.deployments)} deployments of "
            f"{plan.beamline} are up to date"
        )
    else:
        out.print(f"{counts['created']} created, {counts['updated']} updated, {counts['unchanged']} unchanged")
    out.print("start one worker per pool, in the environment where splash_core is installed:")
    for pool in plan.pools:
        out.print(f"  prefect worker start --pool {pool.name} --type {pool.type}")


@prefect_app.command("deploy")
def deploy_command(
    beamline: BeamlineArgument,
    config: ConfigOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be created; talk to no server")] = False,
) -> None:
    """Create BEAMLINE's work pools and deployments on the Prefect server (PREFECT_API_URL); idempotent."""
    from splash_core.entrypoints.cli import guarded
    from splash_core.entrypoints.prefect.deploy import apply_plan

    plan, api_url = guarded(lambda: _plan(beamline, config))
    if dry_run:
        _show_plan(plan)
        return
    changes = guarded(lambda: apply_plan(plan, api_url=api_url))
    _show_changes(plan, changes)


@prefect_app.command("yaml")
def yaml_command(
    beamline: BeamlineArgument,
    config: ConfigOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write here instead of stdout", show_default=False)
    ] = None,
) -> None:
    """Print (or write) a prefect.yaml with BEAMLINE's deployments, for `prefect deploy --all`."""
    import sys

    from splash_core.entrypoints.cli import guarded, out
    from splash_core.entrypoints.prefect.deploy import render_prefect_yaml

    plan, _ = guarded(lambda: _plan(beamline, config))
    text = render_prefect_yaml(plan)
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text, encoding="utf-8")
    out.print(f"wrote {output}")


__all__ = ["prefect_app"]
