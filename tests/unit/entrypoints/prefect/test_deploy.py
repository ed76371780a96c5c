"""Deployments: the plan per beamline, options, prefect.yaml, and applying it idempotently."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from splash_core.domain.errors import ConfigError, SchedulerError
from splash_core.entrypoints.cli import app
from splash_core.entrypoints.config import load_settings
from splash_core.entrypoints.prefect.deploy import apply_plan, plan_deployments, render_prefect_yaml
from splash_core.entrypoints.prefect.options import PrefectOptions, prefect_options
from tests.unit.entrypoints.prefect._support import batch

runner = CliRunner()


def edit_config(workspace: Path, **changes: Any) -> Path:
    """Apply top-level or dotted-path changes to the workspace's splash.yaml."""
    path = workspace / "splash.yaml"
    data = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class TestPlan:
    """What `splash prefect deploy BEAMLINE` would create."""

    def test_deployment_and_pool_names_are_per_beamline(self, workspace: Path) -> None:
        """bl733 and bl832 share no deployment or pool name (the reference's collided)."""
        settings = load_settings(workspace / "splash.yaml")
        plans = [plan_deployments(settings, b, workspace / "splash.yaml") for b in ("bl733", "bl832", "bl7012")]

        names = [d.full_name for p in plans for d in p.deployments]
        pools = [pool.name for p in plans for pool in p.pools]
        assert len(names) == len(set(names))
        assert len(pools) == len(set(pools))
        assert "splash-dispatch/bl733-dispatch" in names
        assert {pool.name for pool in plans[0].pools} == {"splash-bl733-dispatch", "splash-bl733-prune"}

    def test_flows_run_from_the_installed_package_with_the_config(self, workspace: Path) -> None:
        """Every entrypoint is a module path to a flow; the config goes as parameter and SPLASH_CONFIG."""
        from prefect import Flow
        from prefect.utilities.importtools import import_object

        config = workspace / "splash.yaml"
        plan = plan_deployments(load_settings(config), "bl733", config)

        for spec in plan.deployments:
            assert isinstance(import_object(spec.entrypoint), Flow)
            assert spec.parameters["config"] == str(config.resolve())
            assert spec.job_variables["env"]["SPLASH_CONFIG"] == str(config.resolve())

    def test_the_prune_sweep_is_hourly_by_default_and_configurable(self, workspace: Path) -> None:
        """Default every 60 min; options.prefect.prune_cron replaces it."""
        config = workspace / "splash.yaml"
        prune = plan_deployments(load_settings(config), "bl733", config).deployment("splash-prune")
        assert prune.schedule is not None
        assert prune.schedule.interval_seconds == 3600
        assert prune.concurrency_limit == 1

        edit_config(workspace, options__prefect={"prune_cron": "15 * * * *", "work_pool_prefix": "als"})
        plan = plan_deployments(load_settings(config), "bl733", config)
        assert plan.deployment("splash-prune").schedule.cron == "15 * * * *"  # type: ignore[union-attr]
        assert plan.pool("prune").name == "als-bl733-prune"

    def test_only_beamlines_with_an_archive_or_route_get_those_deployments(self, workspace: Path) -> None:
        """bl733 archives to tape; bl832 has no archive block; both have a flight-check route."""
        config = workspace / "splash.yaml"
        settings = load_settings(config)
        flows_733 = {d.flow_name for d in plan_deployments(settings, "bl733", config).deployments}
        flows_832 = {d.flow_name for d in plan_deployments(settings, "bl832", config).deployments}
        assert "splash-archive" in flows_733
        assert "splash-archive" not in flows_832
        assert "splash-flight-check" in flows_832

    def test_options_are_checked_with_key_paths(self, workspace: Path) -> None:
        """Unknown keys and bad values are reported with their key path."""
        edit_config(workspace, options__prefect={"prune_every": 5, "prune_interval_minutes": -1, "prune_cron": "x"})

        with pytest.raises(ConfigError) as info:
            prefect_options(load_settings(workspace / "splash.yaml"))

        problems = "\n".join(info.value.problems)
        assert "options.prefect.prune_every: unknown key" in problems
        assert "options.prefect.prune_interval_minutes: expected a number > 0" in problems
        assert "options.prefect.prune_cron: expected a cron expression" in problems

    def test_prefect_yaml_lists_the_same_deployments(self, workspace: Path) -> None:
        """The generated prefect.yaml has every planned deployment, its pool and schedule."""
        config = workspace / "splash.yaml"
        plan = plan_deployments(load_settings(config), "bl733", config)

        text = render_prefect_yaml(plan)

        assert "&id" not in text  # no YAML anchors: readable and editable
        document = yaml.safe_load(text)
        assert [d["name"] for d in document["deployments"]] == [d.name for d in plan.deployments]
        prune = next(d for d in document["deployments"] if d["name"] == "bl733-prune")
        assert prune["schedules"][0]["interval"] == 3600
        assert prune["work_pool"]["name"] == "splash-bl733-prune"
        assert prune["entrypoint"] == "splash_core.entrypoints.prefect.flows.prune_flow"

    def test_dry_run_and_yaml_commands(self, workspace: Path, tmp_path: Path) -> None:
        """`splash prefect deploy --dry-run` shows the plan; `splash prefect yaml -o` writes the file."""
        config = str(workspace / "splash.yaml")
        shown = runner.invoke(app, ["prefect", "deploy", "bl733", "--dry-run", "--config", config])
        written = runner.invoke(app, ["prefect", "yaml", "bl733", "--config", config, "-o", str(tmp_path / "p.yaml")])

        assert shown.exit_code == 0, shown.output
        assert "splash-dispatch/bl733-dispatch" in shown.output
        assert written.exit_code == 0, written.output
        assert yaml.safe_load((tmp_path / "p.yaml").read_text())["name"] == "splash-bl733"

    def test_an_unknown_beamline_is_a_usage_error(self, workspace: Path) -> None:
        """Exit code 2 and the known beamlines."""
        result = runner.invoke(
            app, ["prefect", "deploy", "bl999", "--dry-run", "--config", str(workspace / "splash.yaml")]
        )

        assert result.exit_code == 2
        assert "bl733" in result.output


def test_an_unreachable_server_is_reported(workspace: Path) -> None:
    """Deploying to a server that is down fails with its address."""
    config = workspace / "splash.yaml"
    plan = plan_deployments(load_settings(config), "bl733", config)

    with pytest.raises(SchedulerError, match=r"127\.0\.0\.1:9"):
        apply_plan(plan, api_url="http://127.0.0.1:9/api")


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_api")
class TestApply:
    """Applying a plan to a real Prefect API."""

    def test_deploying_twice_changes_nothing_the_second_time(self, workspace: Path) -> None:
        """The first run creates pools and deployments, the second says nothing changed."""
        prefix = f"t{uuid.uuid4().hex[:8]}"
        config = edit_config(workspace, options__prefect={"work_pool_prefix": prefix})

        first = runner.invoke(app, ["prefect", "deploy", "bl733", "--config", str(config)], env={"COLUMNS": "200"})
        second = runner.invoke(app, ["prefect", "deploy", "bl733", "--config", str(config)], env={"COLUMNS": "200"})

        assert first.exit_code == 0, first.output
        assert f"work pool {prefix}-bl733-dispatch: created" in first.output
        assert "deployment splash-dispatch/bl733-dispatch: created" in first.output
        assert second.exit_code == 0, second.output
        assert "nothing changed" in second.output
        assert "created" not in second.output

    def test_a_changed_schedule_updates_only_that_deployment(self, workspace: Path) -> None:
        """Changing the prune interval updates the prune deployment and nothing else."""
        prefix = f"t{uuid.uuid4().hex[:8]}"
        config = edit_config(workspace, options__prefect={"work_pool_prefix": prefix})
        settings = load_settings(config)
        apply_plan(plan_deployments(settings, "bl832", config))

        faster = PrefectOptions(work_pool_prefix=prefix, prune_interval_minutes=15)
        changes = apply_plan(plan_deployments(settings, "bl832", config, faster))

        updated = {c.name: c.detail for c in changes if c.action == "updated"}
        assert list(updated) == ["splash-prune/bl832-prune"]
        assert "schedules" in updated["splash-prune/bl832-prune"]


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_api")
def test_with_the_prefect_scheduler_prunes_become_flow_runs_and_survive_losing_prefect(workspace: Path) -> None:
    """A dispatch schedules its prune and archive as flow runs; with those runs gone, the sweep still prunes."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    from splash_core.adapters.prefect.scheduler import PrefectScheduler
    from splash_core.entrypoints.api import open_config
    from splash_core.entrypoints.prefect.flows import prune_flow

    prefix = f"t{uuid.uuid4().hex[:8]}"
    config = edit_config(workspace, adapters__scheduler="prefect", options__prefect={"work_pool_prefix": prefix})
    apply_plan(plan_deployments(load_settings(config), "bl733", config))
    splash = open_config(config)
    assert isinstance(splash.scheduler, PrefectScheduler)
    paths = batch(workspace, "p2026", 3)

    assert splash.dispatch("bl733", paths).ok

    task_runs = FlowRunFilter(tags=FlowRunFilterTags(all_=[f"{prefix}-task"]))
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=task_runs)
        kinds = sorted(r.parameters["scheduled"]["kind"] for r in runs)
        assert kinds == ["archive", "prune"]
        prune_run = next(r for r in runs if r.parameters["scheduled"]["kind"] == "prune")
        assert prune_run.state.state_details.scheduled_time > datetime.now(UTC) + timedelta(days=179)
        for run in runs:  # the Prefect database is lost
            client.delete_flow_run(run.id)

    state = prune_flow(at=datetime.now(UTC) + timedelta(days=181), config=str(config), return_state=True)

    assert state.is_completed(), state.message
    assert state.result()["deleted"] == 3
    assert len(state.result()["tasks_run"]) == 1  # the archive, kept in the splash database
    assert not (workspace / "facilities" / "data733" / paths[0]).exists()


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_api")
def test_watch_via_prefect_hands_each_batch_to_the_dispatch_deployment(workspace: Path) -> None:
    """`splash watch --via prefect --once` creates one flow run per batch, with the batch's paths."""
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    prefix = f"t{uuid.uuid4().hex[:8]}"
    config = edit_config(workspace, options__prefect={"work_pool_prefix": prefix})
    apply_plan(plan_deployments(load_settings(config), "bl7012", config))
    source = workspace / "facilities" / "data7012"
    for i in range(5):
        (source / "scan").mkdir(parents=True, exist_ok=True)
        (source / "scan" / f"p{i}.cxi").write_bytes(b"x" * (i + 1))
        old = time.time() - 3600
        os.utime(source / "scan" / f"p{i}.cxi", (old, old))

    result = runner.invoke(
        app,
        ["watch", "bl7012", "--via", "prefect", "--once", "--batch-files", "2", "--config", str(config)],
        env={"COLUMNS": "200"},
    )

    assert result.exit_code == 0, result.output
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("splash-dispatch/bl7012-dispatch")
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])))
    batches = sorted(tuple(r.parameters["paths"]) for r in runs)
    assert batches == [("scan/p0.cxi", "scan/p1.cxi"), ("scan/p2.cxi", "scan/p3.cxi"), ("scan/p4.cxi",)]
    assert {r.parameters["beamline"] for r in runs} == {"bl7012"}
