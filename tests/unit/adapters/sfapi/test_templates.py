"""Slurm batch scripts: golden renderings, shell safety of every value, refusals of bad specs."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from splash_core.adapters.sfapi import JobKindSettings, SlurmSettings, example_kinds
from splash_core.adapters.sfapi.templates import job_name, render_job, slurm_time
from splash_core.domain.errors import ConfigError, JobError
from splash_core.domain.models import JobSpec

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("SPLASH_UPDATE_GOLDEN") == "1"
CFS = "/global/cfs/cdirs/als/data_mover"
PSCRATCH = "/pscratch/sd/a/alsdev"
HOSTILE = ["a b.h5", "x'$(rm -rf ~)'.h5", "back`tick`.h5", "ünïcødé.h5", 'quote"d;ls.h5', "-lead.h5", "$HOME.h5"]

SLURM = SlurmSettings(account="als", log_dir=f"{CFS}/logs/splash", qos="realtime", max_time_limit_s=12 * 3600)
KINDS = example_kinds(
    reconstruct_image="registry.nersc.gov/als/splash-core:1.0",
    multires_image="registry.nersc.gov/als/splash-core:1.0",
    ptycho_image="registry.nersc.gov/als/ptychocam:2.1",
)

SPECS = {
    "reconstruct": JobSpec(
        name="bl832 reconstruct 20230606_151124_fungi1",
        kind="reconstruct",
        parameters={
            "input": f"{CFS}/8.3.2/raw/BLS-00123/20230606_151124_fungi1.h5",
            "output_dir": f"{PSCRATCH}/8.3.2/scratch/BLS-00123/rec20230606_151124_fungi1",
            "filter": "shepp-logan",
        },
        time_limit_s=3600,
        idempotency_key="bl832/recon/20230606_151124_fungi1",
    ),
    "multires": JobSpec(
        name="bl832 multires 20230606_151124_fungi1",
        kind="multires",
        parameters={
            "tiff_dir": f"{PSCRATCH}/8.3.2/scratch/BLS-00123/rec20230606_151124_fungi1",
            "output": f"{PSCRATCH}/8.3.2/scratch/BLS-00123/rec20230606_151124_fungi1.zarr",
            "levels": "4",
            "overwrite": "true",
        },
        time_limit_s=1800,
    ),
    "ptycho": JobSpec(
        name="bl7012 ptycho NS_230101_001",
        kind="ptycho",
        parameters={
            "input": "/global/cfs/cdirs/als/gsharing/data_mover/7012/2023/NS_230101_001.cxi",
            "output_dir": "/global/cfs/cdirs/als/gsharing/data_mover/7012/2023/NS_230101_001_recon",
            "n_iter": "500",
            "use_illu_mask": "yes",
        },
        time_limit_s=2 * 3600 + 30,
    ),
}


def bash_syntax_ok(script: str, tmp_path: Path) -> None:
    path = tmp_path / "script.sh"
    path.write_text(script)
    done = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def container_argv(script: str) -> list[str]:
    """The words of the ``srun podman-hpc run`` command, continuation lines joined."""
    joined = script.replace("\\\n", " ")
    (line,) = [ln for ln in joined.splitlines() if ln.startswith("srun podman-hpc run")]
    return shlex.split(line.split(" || ", 1)[0])


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_rendered_script_matches_golden(kind: str, tmp_path: Path) -> None:
    """Each job kind renders exactly the reviewed golden script."""
    script = render_job(SPECS[kind], KINDS[kind], SLURM).script
    golden = GOLDEN / f"{kind}.sh"
    if UPDATE:
        golden.write_text(script)
    assert script == golden.read_text()
    bash_syntax_ok(script, tmp_path)


def test_golden_scripts_keep_the_safety_lines() -> None:
    """Every golden script stops on errors and exits with the container's status."""
    for path in GOLDEN.glob("*.sh"):
        text = path.read_text()
        assert "set -euo pipefail" in text, path
    for kind in SPECS:
        text = (GOLDEN / f"{kind}.sh").read_text()
        assert "|| status=$?" in text
        assert 'exit "${status}"' in text
        assert "#SBATCH --account=als" in text


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_path_is_one_word(name: str, tmp_path: Path) -> None:
    """A path with quotes, $(...), backticks, spaces or unicode reaches the container as one argument."""
    spec = JobSpec(
        name=f"recon {name}",
        kind="reconstruct",
        parameters={"input": f"{CFS}/8.3.2/raw/P/{name}", "output_dir": f"{PSCRATCH}/out/{name}"},
    )
    script = render_job(spec, KINDS["reconstruct"], SLURM).script
    bash_syntax_ok(script, tmp_path)
    argv = container_argv(script)
    assert argv[-2:] == [f"{CFS}/8.3.2/raw/P/{name}", f"{PSCRATCH}/out/{name}"]
    assert "#SBATCH --job-name=recon_" in script
    for line in script.splitlines():
        if line.startswith("#SBATCH"):
            assert "'" not in line
            assert "$" not in line
            assert "`" not in line


def test_hostile_script_runs_without_side_effects(tmp_path: Path) -> None:
    """Running the rendered script (stand-in tools) touches nothing but the declared output."""
    (tmp_path / "bin").mkdir()
    for tool, body in {
        "srun": 'exec "$@"',
        "podman-hpc": 'shift; while [ "${1#-}" != "$1" ]; do shift; done; shift; exec "$@"',
    }.items():
        stub = tmp_path / "bin" / tool
        stub.write_text(f"#!/bin/bash\n{body}\n")
        stub.chmod(0o755)
    source = tmp_path / "in" / "x'$(touch PWNED)'`touch PWNED2`.txt"
    source.parent.mkdir()
    source.write_text("data")
    output = tmp_path / "out dir" / "copy $HOME.txt"
    kind = JobKindSettings(image="img:1", command=("cp", "--"), inputs=("input",), outputs=("output",))
    slurm = SlurmSettings(account="als", log_dir=str(tmp_path / "logs"))
    spec = JobSpec(name="copy", kind="copy", parameters={"input": str(source), "output": str(output)})
    script = tmp_path / "job.sh"
    script.write_text(render_job(spec, kind, slurm).script)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert output.read_text() == "data"
    assert not (tmp_path / "PWNED").exists()
    assert not (tmp_path / "PWNED2").exists()


def test_script_exits_with_the_container_status(tmp_path: Path) -> None:
    """A failing container makes the script fail with the same status, before the output check."""
    (tmp_path / "bin").mkdir()
    for tool, body in {"srun": 'exec "$@"', "podman-hpc": "exit 7"}.items():
        stub = tmp_path / "bin" / tool
        stub.write_text(f"#!/bin/bash\n{body}\n")
        stub.chmod(0o755)
    kind = JobKindSettings(image="img:1", command=("true",), inputs=("input",), outputs=("output",))
    slurm = SlurmSettings(account="als", log_dir=str(tmp_path / "logs"))
    spec = JobSpec(name="x", kind="x", parameters={"input": str(tmp_path / "a"), "output": str(tmp_path / "b")})
    script = tmp_path / "job.sh"
    script.write_text(render_job(spec, kind, slurm).script)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 7
    assert "container exited with status 7" in done.stdout


def test_missing_output_fails_the_script(tmp_path: Path) -> None:
    """A container that exits 0 without writing its output makes the script exit 3."""
    (tmp_path / "bin").mkdir()
    for tool in ("srun", "podman-hpc"):
        stub = tmp_path / "bin" / tool
        stub.write_text("#!/bin/bash\nexit 0\n")
        stub.chmod(0o755)
    kind = JobKindSettings(image="img:1", command=("true",), inputs=("input",), outputs=("output",))
    slurm = SlurmSettings(account="als", log_dir=str(tmp_path / "logs"))
    spec = JobSpec(name="x", kind="x", parameters={"input": str(tmp_path / "a"), "output": str(tmp_path / "b")})
    script = tmp_path / "job.sh"
    script.write_text(render_job(spec, kind, slurm).script)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 3
    assert "expected output is missing" in done.stderr


@pytest.mark.parametrize(
    ("parameters", "problem"),
    [
        ({"input": f"{CFS}/a.h5"}, "missing required path parameter(s) output_dir"),
        ({"input": f"{CFS}/a.h5", "output_dir": f"{PSCRATCH}/o", "fitler": "ramp"}, "unknown parameter(s) fitler"),
        ({"input": "raw/a.h5", "output_dir": f"{PSCRATCH}/o"}, "absolute, normalised path"),
        ({"input": f"{CFS}/../etc/passwd", "output_dir": f"{PSCRATCH}/o"}, "absolute, normalised path"),
        ({"input": f"{CFS}/a.h5", "output_dir": "/home/elsewhere/o"}, "outside the allowed folders"),
        ({"input": f"{CFS}/a:b.h5", "output_dir": f"{PSCRATCH}/o"}, "contains ':'"),
        ({"input": f"{CFS}/a\nb.h5", "output_dir": f"{PSCRATCH}/o"}, "control character"),
    ],
)
def test_bad_parameters_are_refused(parameters: dict[str, str], problem: str) -> None:
    """A spec with a missing, unknown or unsafe parameter is refused before anything is submitted."""
    spec = JobSpec(name="bad", kind="reconstruct", parameters=parameters)
    with pytest.raises(JobError, match="job bad \\(kind reconstruct\\) was not submitted") as info:
        render_job(spec, KINDS["reconstruct"], SLURM)
    assert problem in str(info.value)


def test_time_limit_beyond_the_qos_is_refused() -> None:
    """A time limit longer than the configured maximum is refused, naming both."""
    spec = JobSpec(name="long", kind="multires", parameters=dict(SPECS["multires"].parameters), time_limit_s=13 * 3600)
    with pytest.raises(JobError, match="46800 s is longer than the 43200 s"):
        render_job(spec, KINDS["multires"], SLURM)


def test_switch_must_be_boolean() -> None:
    """A switch parameter that is neither true nor false is refused."""
    params = {**SPECS["multires"].parameters, "overwrite": "maybe"}
    with pytest.raises(JobError, match="switch parameter 'overwrite'"):
        render_job(JobSpec(name="m", kind="multires", parameters=params), KINDS["multires"], SLURM)


def test_false_switch_is_left_out() -> None:
    """A switch set to false adds no flag."""
    params = {**SPECS["multires"].parameters, "overwrite": "false"}
    script = render_job(JobSpec(name="m", kind="multires", parameters=params), KINDS["multires"], SLURM).script
    assert "--overwrite" not in script


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (1, "00:01:00"),
        (60, "00:01:00"),
        (61, "00:02:00"),
        (3600, "01:00:00"),
        (86400, "1-00:00:00"),
        (90061, "1-01:02:00"),
    ],
)
def test_slurm_time(seconds: float, expected: str) -> None:
    """Time limits round up to whole minutes and use days past 24 h."""
    assert slurm_time(seconds) == expected


def test_job_name_is_plain_and_keyed() -> None:
    """Job names keep only safe characters and carry a hash of the idempotency key."""
    assert job_name("recon a b/'$x'") == "recon_a_b_x"
    keyed = job_name("recon", "key-1")
    assert keyed.startswith("recon-")
    assert len(keyed) == len("recon-") + 8
    assert job_name("x" * 300, "k").__len__() == 100


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("account", "als m1234", "sfapi.account"),
        ("qos", "regular\n#SBATCH --qos=premium", "sfapi.qos"),
        ("log_dir", "logs/relative", "sfapi.log_dir"),
        ("log_dir", "/global/with space", "sfapi.log_dir"),
        ("extra_directives", ("--mem=20GB\n#SBATCH --qos=premium",), "sfapi.extra_sbatch"),
        ("extra_directives", ("-q premium",), "sfapi.extra_sbatch"),
    ],
)
def test_settings_refuse_values_that_could_inject_directives(field: str, value: object, message: str) -> None:
    """Settings that end up in #SBATCH lines are checked when they are made."""
    values: dict[str, object] = {"account": "als", "log_dir": "/global/logs", field: value}
    with pytest.raises(ConfigError, match=message):
        SlurmSettings(**values)  # type: ignore[arg-type]


def test_kind_settings_are_checked() -> None:
    """A kind needs an image reference, a command and distinct parameter names."""
    with pytest.raises(ConfigError, match="image"):
        JobKindSettings(image="bad image", command=("x",))
    with pytest.raises(ConfigError, match="command"):
        JobKindSettings(image="img:1", command=())
    with pytest.raises(ConfigError, match="declared twice"):
        JobKindSettings(image="img:1", command=("x",), inputs=("a",), outputs=("a",))
