"""Rendering job commands: placeholders quoted, options and flags, prologue, the time-limit wrapper."""

from __future__ import annotations

import shlex

import pytest

from splash_core.adapters.globus_compute import GlobusComputeSettings, JobTemplate, example_templates
from splash_core.adapters.globus_compute.templates import render_command, render_task
from splash_core.domain.errors import ConfigError, JobError
from splash_core.domain.models import JobSpec
from tests.unit.adapters.globus_compute.simulated import ENDPOINT_ID


def spec(kind: str, time_limit_s: float = 3600.0, **parameters: str) -> JobSpec:
    return JobSpec(name="bl832-alcf_recon-x", kind=kind, parameters=parameters, time_limit_s=time_limit_s)


def test_the_8_3_2_jobs() -> None:
    """The example kinds run the processing CLI with the bl832 parameters; stem is ignored."""
    kinds = example_templates("/eagle/als/env/bin/python")
    reconstruct = render_command(
        spec(
            "reconstruct",
            input="/data/raw/scan 1.h5",
            output_dir="/data/scratch/scan 1/recscan 1",
            stem="scan 1",
            filter="shepp",
            center="640.5",
        ),
        kinds["reconstruct"],
    )
    assert reconstruct == (
        "/eagle/als/env/bin/python -m splash_core.processing --verbose reconstruct '/data/raw/scan 1.h5' "
        "'/data/scratch/scan 1/recscan 1' --filter shepp --center 640.5"
    )
    multires = render_command(
        spec(
            "multires",
            tiff_dir="/data/scratch/s/recs",
            output="/data/scratch/s/recs.zarr",
            stem="s",
            overwrite="true",
            levels="",
        ),
        kinds["multires"],
    )
    assert multires == (
        "/eagle/als/env/bin/python -m splash_core.processing --verbose multires /data/scratch/s/recs "
        "/data/scratch/s/recs.zarr --overwrite"
    )


def test_literal_braces_and_job_name() -> None:
    """{{ }} are literal braces and {job_name} is the spec's name, quoted."""
    template = JobTemplate(command='echo "${{HOME}}" {job_name} {input}')
    assert render_command(spec("x", input="a b"), template) == "echo \"${HOME}\" bl832-alcf_recon-x 'a b'"


def test_a_value_with_braces_is_not_a_placeholder() -> None:
    """A value holding {placeholders} is inserted as text, never expanded again."""
    assert render_command(spec("x", input="{job_name}"), JobTemplate(command="echo {input}")) == "echo '{job_name}'"


def test_a_switch_must_be_true_or_false() -> None:
    """A flag parameter that is neither true nor false is refused."""
    with pytest.raises(JobError, match="switch parameter 'overwrite' must be true or false"):
        render_command(spec("multires", tiff_dir="/a", output="/b", overwrite="maybe"), example_templates()["multires"])


def test_a_blank_required_parameter_is_refused() -> None:
    """A placeholder's parameter that is blank is refused like a missing one."""
    with pytest.raises(JobError, match=r"missing required parameter.*input"):
        render_command(spec("x", input="  "), JobTemplate(command="echo {input}"))


def test_prologue_and_time_limit() -> None:
    """The prologue comes first and the whole script runs under timeout with the spec's limit."""
    settings = GlobusComputeSettings(endpoint_id=ENDPOINT_ID, prologue="module load conda\n", kill_grace_s=30)
    task = render_task(spec("x", time_limit_s=90.5, input="/a b"), JobTemplate(command="run {input}"), settings)
    assert shlex.split(task) == [
        "timeout",
        "--kill-after=30s",
        "91s",
        "bash",
        "-c",
        "module load conda\nrun '/a b'",
    ]


def test_without_the_time_limit() -> None:
    """With enforce_time_limit off the script is sent as it is."""
    settings = GlobusComputeSettings(endpoint_id=ENDPOINT_ID, enforce_time_limit=False)
    assert render_task(spec("x", input="/a"), JobTemplate(command="run {input}"), settings) == "run /a"


def test_non_positive_time_limit_is_refused() -> None:
    """A job without a positive time limit cannot be wrapped, so it is refused."""
    settings = GlobusComputeSettings(endpoint_id=ENDPOINT_ID)
    with pytest.raises(JobError, match="time limit must be positive"):
        render_task(spec("x", time_limit_s=0, input="/a"), JobTemplate(command="run {input}"), settings)


def test_python_with_braces_is_kept_literal() -> None:
    """Braces in the configured interpreter command are not placeholders."""
    template = example_templates("env X={x} python")["reconstruct"]
    assert render_command(spec("reconstruct", input="/a", output_dir="/b"), template).startswith("env X={x} python")


def test_bad_template_is_a_config_error() -> None:
    """A template with a non-plain placeholder is refused when built."""
    with pytest.raises(ConfigError, match=r"template.command: placeholder \{input\[0\]\}"):
        JobTemplate(command="run {input[0]}")
