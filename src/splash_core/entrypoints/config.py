"""Load and validate the splash configuration file (YAML) into typed settings.

The file is found by an explicit path (``--config``), then the ``SPLASH_CONFIG``
environment variable; never relative to the working directory. Every problem is
reported with its key path, e.g.
``beamlines.bl832.retention.spot832: expected a number of days >= 0, got "x"``.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs
import yaml
from cattrs.gen import make_dict_structure_fn, override

from splash_core.domain.errors import ConfigError, CredentialsError, InvalidInput, InvalidPath
from splash_core.domain.models import ChecksumAlgorithm, Endpoint, Site
from splash_core.domain.settings import (
    AdapterSettings,
    ArchiveSettings,
    BeamlineSettings,
    CopySettings,
    FacilitySettings,
    JobStepSettings,
    ProcessingSettings,
    SecretRef,
    SecretSource,
    Settings,
    TransferSettings,
)

ENV_VAR = "SPLASH_CONFIG"
SUPPORTED_VERSION = 1
KNOWN_ADAPTERS: Mapping[str, frozenset[str]] = {
    "transfer": frozenset({"local", "globus", "fake"}),
    "storage": frozenset({"local", "globus", "fake"}),
    "hpc": frozenset({"local", "sfapi", "globus_compute", "fake"}),
    "tape": frozenset({"local", "hpss", "none", "fake"}),
    "catalog": frozenset({"local", "scicat", "fake"}),
    "scheduler": frozenset({"local", "prefect", "fake"}),
    "ledger": frozenset({"sqlite", "fake"}),
}
# secrets each adapter needs before it can start
REQUIRED_SECRETS: Mapping[str, tuple[str, ...]] = {
    "globus": ("globus_client_id", "globus_client_secret"),
    "sfapi": ("sfapi_client_id", "sfapi_private_key"),
    "hpss": ("sfapi_client_id", "sfapi_private_key"),
    "globus_compute": ("globus_client_id", "globus_client_secret"),
    "scicat": ("scicat_username", "scicat_password"),
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


# --- the file as written ------------------------------------------------------


@attrs.frozen
class _Days:
    value: float


@attrs.frozen
class RawFacility:
    site: Site
    description: str = ""


@attrs.frozen
class RawEndpoint:
    facility: str
    root_path: str
    collection_id: str | None = None
    description: str = ""


@attrs.frozen
class RawAdapters:
    transfer: str = "local"
    storage: str = "local"
    hpc: dict[str, str] = attrs.field(factory=dict)
    tape: str = "local"
    catalog: str = "local"
    scheduler: str = "local"
    ledger: str = "sqlite"


@attrs.frozen
class RawTransfer:
    max_files_per_batch: int = 1000
    max_bytes_per_batch: int = 2 * 1024**4
    timeout_seconds: float = 6 * 3600.0
    checksum_algorithm: ChecksumAlgorithm = ChecksumAlgorithm.BLAKE3
    retry_attempts: int = 5
    retry_max_wait_seconds: float = 300.0


@attrs.frozen
class RawCopy:
    source: str
    destination: str
    enabled: bool = True


@attrs.frozen
class RawJob:
    kind: str
    time_limit_minutes: float = 60.0
    parameters: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class RawProcessing:
    hpc: str
    input_endpoint: str
    output_endpoint: str
    jobs: list[RawJob]
    stage_from: str | None = None
    return_to: list[str] = attrs.field(factory=list)
    retention: dict[str, _Days] = attrs.field(factory=dict)


@attrs.frozen
class RawArchive:
    source: str
    after_days: _Days = _Days(30.0)
    proposal_depth: int = 0


@attrs.frozen
class RawBeamline:
    title: str
    source: str
    copies: list[RawCopy]
    retention: dict[str, _Days] = attrs.field(factory=dict)
    decisions: dict[str, bool] = attrs.field(factory=dict)
    processing: dict[str, RawProcessing] = attrs.field(factory=dict)
    archive: RawArchive | None = None
    include: list[str] = attrs.field(factory=list)
    settle_seconds: float = 30.0
    batch_files: int = 500
    batch_seconds: float = 10.0


@attrs.frozen
class RawSecret:
    env: str | None = None
    file: str | None = None


@attrs.frozen
class RawConfig:
    version: int
    facilities: dict[str, RawFacility]
    endpoints: dict[str, RawEndpoint]
    beamlines: dict[str, RawBeamline]
    adapters: RawAdapters = attrs.field(factory=RawAdapters)
    transfer: RawTransfer = attrs.field(factory=RawTransfer)
    workspace: str | None = None
    secrets: dict[str, RawSecret] = attrs.field(factory=dict)
    options: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    flight_checks: dict[str, list[str]] = attrs.field(factory=dict)


class _Problem(ValueError):
    """A value-level problem with a ready-made message."""


def _structure_days(value: object, _type: object) -> _Days:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        shown = f'"{value}"' if isinstance(value, str) else repr(value)
        raise _Problem(f"expected a number of days >= 0, got {shown}")
    return _Days(float(value))


def _strict(kind: type) -> Any:
    def hook(value: object, _type: object) -> object:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            shown = f'"{value}"' if isinstance(value, str) else repr(value)
            raise _Problem(f"expected {_KIND_NAMES[kind]}, got {shown}")
        return value

    return hook


_KIND_NAMES: dict[type, str] = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    for kind in (str, int, float, bool):
        conv.register_structure_hook(kind, _strict(kind))
    conv.register_structure_hook(_Days, _structure_days)

    def enum_hook(value: object, kind: type[Any]) -> Any:
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in kind)
            raise _Problem(f"expected one of {allowed}, got {value!r}") from None

    conv.register_structure_hook(Site, enum_hook)
    conv.register_structure_hook(ChecksumAlgorithm, enum_hook)
    conv.register_structure_hook(
        RawCopy,
        make_dict_structure_fn(
            RawCopy,
            conv,
            _cattrs_forbid_extra_keys=True,
            source=override(rename="from"),
            destination=override(rename="to"),
        ),
    )
    return conv


_converter = _make_converter()


def _format_path(path: str) -> str:
    # cattrs gives "$.beamlines['bl832'].retention['spot832']"; we say beamlines.bl832.retention.spot832
    path = re.sub(r"\['([^']*)'\]", r".\1", path)
    path = re.sub(r"\[(\d+)\]", r"[\1]", path)
    return path.removeprefix("$").lstrip(".") or "(top level)"


def _format_exception(exc: BaseException, _type: Any) -> str:
    if isinstance(exc, _Problem):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required key missing"
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        keys = ", ".join(sorted(exc.extra_fields))
        return f"unknown key(s): {keys}"
    if isinstance(exc, TypeError | AttributeError) and "NoneType" not in str(exc):
        return "expected a mapping (key: value) here"
    return f"invalid value ({exc})"


def _structure_errors(exc: Exception) -> list[str]:
    problems = []
    for line in cattrs.transform_error(exc, path="$", format_exception=_format_exception):
        message, _, path = line.rpartition(" @ ")
        problems.append(f"{_format_path(path)}: {message}")
    return problems


# --- loading ----------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate keys instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first defined on line {seen[key] + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The configuration file to use: ``explicit``, else ``$SPLASH_CONFIG``.

    Raises:
        ConfigError: neither is given.
    """
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    raise ConfigError(
        f"no configuration file given: pass --config FILE or set {ENV_VAR} "
        "(create one with `splash init --workspace DIR`)"
    )


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse the YAML file at ``path`` into plain data.

    Raises:
        ConfigError: missing, unreadable, not YAML, or not a mapping.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"configuration file {p} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"configuration file {p} is a directory; give the YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"configuration file {p} cannot be read: {exc.__class__.__name__}") from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration file {p} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"configuration file {p} must contain a mapping at the top level")
    return data


def load_settings(path: str | os.PathLike[str], *, check_secrets: bool = True) -> Settings:
    """Read, validate and type the configuration file at ``path``.

    Args:
        path: the YAML file.
        check_secrets: also check that every secret the selected adapters need
            can be read (environment variable set, file present and readable).

    Raises:
        ConfigError: with every problem found (``.problems``), each naming its key path.
    """
    p = Path(path)
    data = read_config(p)
    return settings_from_dict(data, base_dir=p.resolve().parent, source=str(p), check_secrets=check_secrets)


def settings_from_dict(
    data: Mapping[str, Any],
    *,
    base_dir: Path,
    source: str = "<memory>",
    check_secrets: bool = True,
) -> Settings:
    """Validate plain configuration data (as read from YAML) into :class:`Settings`.

    Raises:
        ConfigError: with every problem found.
    """
    try:
        raw = _converter.structure(dict(data), RawConfig)
    except Exception as exc:  # cattrs raises ExceptionGroups of many kinds
        problems = _structure_errors(exc)
        raise ConfigError(_summary(source, problems), tuple(problems)) from None
    problems = list(_semantic_problems(raw, check_secrets=check_secrets))
    if problems:
        raise ConfigError(_summary(source, problems), tuple(problems))
    return _to_settings(raw, base_dir=base_dir, source=source)


def _summary(source: str, problems: list[str]) -> str:
    n = len(problems)
    first = problems[0] if problems else "unknown problem"
    more = f" (and {n - 1} more)" if n > 1 else ""
    return f"configuration {source} is invalid: {first}{more}"


def _semantic_problems(raw: RawConfig, *, check_secrets: bool) -> Iterable[str]:
    if raw.version != SUPPORTED_VERSION:
        yield f"version: expected {SUPPORTED_VERSION}, got {raw.version}"
    for kind in ("transfer", "storage", "tape", "catalog", "scheduler", "ledger"):
        value = getattr(raw.adapters, kind)
        if value not in KNOWN_ADAPTERS[kind]:
            allowed = ", ".join(sorted(KNOWN_ADAPTERS[kind]))
            yield f"adapters.{kind}: unknown adapter {value!r} (one of: {allowed})"
    for facility, value in raw.adapters.hpc.items():
        if facility not in raw.facilities:
            yield f"adapters.hpc.{facility}: unknown facility {facility!r}"
        if value not in KNOWN_ADAPTERS["hpc"]:
            allowed = ", ".join(sorted(KNOWN_ADAPTERS["hpc"]))
            yield f"adapters.hpc.{facility}: unknown adapter {value!r} (one of: {allowed})"
    t = raw.transfer
    if t.max_files_per_batch < 1:
        yield f"transfer.max_files_per_batch: expected an integer >= 1, got {t.max_files_per_batch}"
    if t.max_bytes_per_batch < 1:
        yield f"transfer.max_bytes_per_batch: expected an integer >= 1, got {t.max_bytes_per_batch}"
    if t.timeout_seconds <= 0:
        yield f"transfer.timeout_seconds: expected a number > 0, got {t.timeout_seconds}"
    if t.retry_attempts < 1:
        yield f"transfer.retry_attempts: expected an integer >= 1, got {t.retry_attempts}"

    for name in raw.facilities:
        if not _NAME.match(name):
            yield f"facilities.{name}: names may use letters, digits, '_', '-' and '.' only"
    seen_roots: dict[tuple[str | None, str, str], str] = {}
    for name, ep in raw.endpoints.items():
        where = f"endpoints.{name}"
        if not _NAME.match(name):
            yield f"{where}: names may use letters, digits, '_', '-' and '.' only"
        if ep.facility not in raw.facilities:
            yield f"{where}.facility: unknown facility {ep.facility!r} (define it under facilities)"
        if not ep.root_path.startswith("/"):
            yield f"{where}.root_path: expected an absolute path, got {ep.root_path!r}"
        if ep.collection_id is not None:
            try:
                uuid.UUID(ep.collection_id)
            except ValueError:
                yield f"{where}.collection_id: expected a UUID, got {ep.collection_id!r}"
        elif raw.adapters.transfer == "globus":
            yield f"{where}.collection_id: required when adapters.transfer is globus"
        root_key = (ep.collection_id, os.path.normpath(ep.root_path), ep.facility)
        if root_key in seen_roots:
            yield f"{where}: same collection and root as endpoints.{seen_roots[root_key]} (duplicate endpoint)"
        seen_roots[root_key] = name

    endpoints = raw.endpoints
    for bl_id, bl in raw.beamlines.items():
        where = f"beamlines.{bl_id}"
        if not _NAME.match(bl_id):
            yield f"{where}: names may use letters, digits, '_', '-' and '.' only"
        yield from _unknown_endpoint(f"{where}.source", bl.source, endpoints)
        if not bl.copies:
            yield f"{where}.copies: expected at least one copy (from: ..., to: ...)"
        hops: set[tuple[str, str]] = set()
        for i, copy in enumerate(bl.copies):
            yield from _unknown_endpoint(f"{where}.copies[{i}].from", copy.source, endpoints)
            yield from _unknown_endpoint(f"{where}.copies[{i}].to", copy.destination, endpoints)
            if copy.source == copy.destination:
                yield f"{where}.copies[{i}]: from and to are the same endpoint {copy.source!r}"
            if (copy.source, copy.destination) in hops:
                yield f"{where}.copies[{i}]: duplicate copy {copy.source} -> {copy.destination}"
            hops.add((copy.source, copy.destination))
        sources = {c.source for c in bl.copies}
        for ep_name in bl.retention:
            yield from _unknown_endpoint(f"{where}.retention.{ep_name}", ep_name, endpoints)
            if ep_name in endpoints and ep_name not in sources:
                yield (
                    f"{where}.retention.{ep_name}: no copy leaves {ep_name}, so there is no verified copy "
                    "to check before pruning; add a copy from it or remove the retention"
                )
        for decision in bl.decisions:
            if decision != "new_file" and decision not in bl.processing:
                yield f"{where}.decisions.{decision}: no pipeline of that name (new_file or a processing key)"
        for p_name, proc in bl.processing.items():
            pw = f"{where}.processing.{p_name}"
            if proc.hpc not in raw.facilities:
                yield f"{pw}.hpc: unknown facility {proc.hpc!r}"
            for field in ("input_endpoint", "output_endpoint", "stage_from"):
                value = getattr(proc, field)
                if value is not None:
                    yield from _unknown_endpoint(f"{pw}.{field}", value, endpoints)
            for i, dest in enumerate(proc.return_to):
                yield from _unknown_endpoint(f"{pw}.return_to[{i}]", dest, endpoints)
            for ep_name in proc.retention:
                yield from _unknown_endpoint(f"{pw}.retention.{ep_name}", ep_name, endpoints)
            if not proc.jobs:
                yield f"{pw}.jobs: expected at least one job"
            for i, job in enumerate(proc.jobs):
                if job.time_limit_minutes <= 0:
                    limit = job.time_limit_minutes
                    yield f"{pw}.jobs[{i}].time_limit_minutes: expected a number > 0, got {limit}"
        if bl.archive is not None:
            yield from _unknown_endpoint(f"{where}.archive.source", bl.archive.source, endpoints)
        if bl.batch_files < 1:
            yield f"{where}.batch_files: expected an integer >= 1, got {bl.batch_files}"
    for route_name, route in raw.flight_checks.items():
        if len(route) < 2:
            yield f"flight_checks.{route_name}: expected at least two endpoints"
        for i, ep_name in enumerate(route):
            yield from _unknown_endpoint(f"flight_checks.{route_name}[{i}]", ep_name, endpoints)

    for name, secret in raw.secrets.items():
        if (secret.env is None) == (secret.file is None):
            yield f"secrets.{name}: give exactly one of env: VARIABLE or file: /path"
        elif secret.file is not None and not secret.file.startswith(("/", "~")):
            yield f"secrets.{name}.file: expected an absolute path, got {secret.file!r}"
    if check_secrets:
        yield from _secret_problems(raw)


def _unknown_endpoint(where: str, name: str, endpoints: Mapping[str, object]) -> Iterable[str]:
    if name not in endpoints:
        yield f"{where}: unknown endpoint {name!r} (define it under endpoints)"


def _selected_adapters(raw: RawConfig) -> set[str]:
    a = raw.adapters
    return {a.transfer, a.storage, a.tape, a.catalog, a.scheduler, *a.hpc.values()}


def _secret_problems(raw: RawConfig) -> Iterable[str]:
    needed: dict[str, str] = {}
    for adapter in sorted(_selected_adapters(raw)):
        for secret in REQUIRED_SECRETS.get(adapter, ()):
            needed.setdefault(secret, adapter)
    for name, adapter in needed.items():
        ref = raw.secrets.get(name)
        if ref is None:
            yield f"secrets.{name}: required by the {adapter} adapter but not configured"
            continue
        try:
            _secret_ref(ref).resolve_check()
        except CredentialsError as exc:
            yield f"secrets.{name}: {exc}"


@attrs.frozen
class _SecretCheck:
    ref: SecretRef

    def resolve_check(self) -> None:
        resolve_secret(self.ref)


def _secret_ref(raw: RawSecret) -> _SecretCheck:
    if raw.env is not None:
        return _SecretCheck(SecretRef(SecretSource.ENV, raw.env))
    return _SecretCheck(SecretRef(SecretSource.FILE, raw.file or ""))


def resolve_secret(ref: SecretRef) -> str:
    """Read the secret ``ref`` points to. The value is never logged or put in a message.

    Raises:
        CredentialsError: the variable is unset/empty, or the file is missing or unreadable.
    """
    if ref.source is SecretSource.ENV:
        value = os.environ.get(ref.name, "")
        if not value:
            raise CredentialsError(f"environment variable {ref.name} is not set")
        return value
    path = Path(ref.name).expanduser()
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise CredentialsError(f"secret file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"secret file {path} cannot be read ({exc.__class__.__name__})") from None
    if not value:
        raise CredentialsError(f"secret file {path} is empty")
    return value


def _to_settings(raw: RawConfig, *, base_dir: Path, source: str) -> Settings:
    facilities = {
        name: FacilitySettings(name=name, site=f.site, description=f.description) for name, f in raw.facilities.items()
    }
    try:
        endpoints = {
            name: Endpoint(
                name=name,
                facility=ep.facility,
                root_path=ep.root_path,
                site=facilities[ep.facility].site,
                collection_id=ep.collection_id,
                description=ep.description,
            )
            for name, ep in raw.endpoints.items()
        }
    except (InvalidInput, InvalidPath) as exc:  # pragma: no cover - checked above
        raise ConfigError(str(exc)) from exc
    beamlines = {bl_id: _beamline(bl_id, bl) for bl_id, bl in raw.beamlines.items()}
    workspace = None
    if raw.workspace is not None:
        ws = Path(raw.workspace).expanduser()
        workspace = str(ws if ws.is_absolute() else (base_dir / ws).resolve())
    t = raw.transfer
    return Settings(
        facilities=facilities,
        endpoints=endpoints,
        beamlines=beamlines,
        adapters=AdapterSettings(
            transfer=raw.adapters.transfer,
            storage=raw.adapters.storage,
            hpc=dict(raw.adapters.hpc),
            tape=raw.adapters.tape,
            catalog=raw.adapters.catalog,
            scheduler=raw.adapters.scheduler,
            ledger=raw.adapters.ledger,
        ),
        transfer=TransferSettings(
            max_files_per_batch=t.max_files_per_batch,
            max_bytes_per_batch=t.max_bytes_per_batch,
            timeout_seconds=t.timeout_seconds,
            checksum_algorithm=t.checksum_algorithm,
            retry_attempts=t.retry_attempts,
            retry_max_wait_seconds=t.retry_max_wait_seconds,
        ),
        workspace=workspace,
        secrets={name: _secret_ref(s).ref for name, s in raw.secrets.items()},
        adapter_options={name: dict(opts) for name, opts in raw.options.items()},
        flight_checks={name: tuple(route) for name, route in raw.flight_checks.items()},
        source_file=source,
    )


def _beamline(bl_id: str, bl: RawBeamline) -> BeamlineSettings:
    return BeamlineSettings(
        id=bl_id,
        title=bl.title,
        source=bl.source,
        copies=tuple(CopySettings(c.source, c.destination, c.enabled) for c in bl.copies),
        retention={k: v.value for k, v in bl.retention.items()},
        decisions=dict(bl.decisions),
        processing={
            name: ProcessingSettings(
                hpc=p.hpc,
                input_endpoint=p.input_endpoint,
                output_endpoint=p.output_endpoint,
                jobs=tuple(JobStepSettings(j.kind, j.time_limit_minutes, dict(j.parameters)) for j in p.jobs),
                stage_from=p.stage_from,
                return_to=tuple(p.return_to),
                retention={k: v.value for k, v in p.retention.items()},
            )
            for name, p in bl.processing.items()
        },
        archive=(
            ArchiveSettings(bl.archive.source, bl.archive.after_days.value, bl.archive.proposal_depth)
            if bl.archive
            else None
        ),
        include=tuple(bl.include),
        settle_seconds=bl.settle_seconds,
        batch_files=bl.batch_files,
        batch_seconds=bl.batch_seconds,
    )
