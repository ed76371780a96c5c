"""The composition root: picks an adapter for each port from the configuration.

Only entrypoints (CLI, Prefect flows, watcher, the Python API) build a container.
Adapters are imported lazily inside their builder functions, so selecting
``local`` never imports globus_sdk, sfapi_client or prefect. ``Selector``
providers return ``Any``; the typed accessors at the bottom give ports back.
Tests replace any port with ``container.<port>.override(fake)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dependency_injector import containers, providers

from splash_core.domain.errors import ConfigError
from splash_core.domain.settings import Settings

if TYPE_CHECKING:
    from splash_core.ports import (
        CatalogPort,
        ClockPort,
        HPCJobPort,
        LedgerPort,
        SchedulerPort,
        StoragePort,
        TapeArchivePort,
        TransferPort,
    )

DB_NAME = "splash.db"


def workspace_of(settings: Settings) -> Path:
    """The workspace folder (ledger, job logs), created if missing.

    Raises:
        ConfigError: the configuration has no ``workspace``.
    """
    if not settings.workspace:
        raise ConfigError("workspace: required (the folder for the ledger database and job logs)")
    path = Path(settings.workspace)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _options(settings: Settings, adapter: str) -> Mapping[str, Any]:
    return settings.adapter_options.get(adapter, {})


# --- builders (lazy imports keep SDKs out unless selected) -------------------------


def _system_clock() -> ClockPort:
    from splash_core.adapters.local.clock import SystemClock

    return SystemClock()


def _sqlite_path(settings: Settings) -> Path:
    return workspace_of(settings) / DB_NAME


def _database(settings: Settings) -> Any:
    from splash_core.adapters.local.database import SqliteDatabase

    return SqliteDatabase(_sqlite_path(settings))


def _sqlite_ledger(db: Any) -> LedgerPort:
    from splash_core.adapters.local.ledger import SqliteLedger

    return SqliteLedger(db)


def _sqlite_catalog(db: Any) -> CatalogPort:
    from splash_core.adapters.local.catalog import SqliteCatalog

    return SqliteCatalog(db)


def _sqlite_scheduler(db: Any) -> SchedulerPort:
    from splash_core.adapters.local.scheduler import SqliteScheduler

    return SqliteScheduler(db)


def _local_storage() -> StoragePort:
    from splash_core.adapters.local.storage import LocalStorage

    return LocalStorage()


def _local_transfer(db: Any) -> TransferPort:
    from splash_core.adapters.local.transfer import LocalTransfer

    return LocalTransfer(db)


def _local_tape(settings: Settings) -> TapeArchivePort:
    from splash_core.adapters.local.tape import LocalTape

    root = _options(settings, "local").get("tape_root") or str(workspace_of(settings) / "tape")
    return LocalTape(str(root))


def _globus_client(settings: Settings) -> Any:
    """A memoised factory: the TransferClient (and its first token) is made on first use, once."""
    import functools

    from splash_core.adapters.globus.auth import GlobusCredentials, build_transfer_client
    from splash_core.entrypoints.config import resolve_secret

    @functools.cache
    def make() -> Any:
        credentials = GlobusCredentials(
            client_id=resolve_secret(settings.secrets["globus_client_id"]),
            client_secret=resolve_secret(settings.secrets["globus_client_secret"]),
        )
        return build_transfer_client(credentials)

    return make


def _globus_transfer(settings: Settings, client: Any) -> TransferPort:
    from splash_core.adapters.globus.transfer import GlobusTransfer

    return GlobusTransfer.from_options(client, _options(settings, "globus"))


def _globus_storage(settings: Settings, client: Any) -> StoragePort:
    from splash_core.adapters.globus.storage import GlobusStorage

    return GlobusStorage.from_options(client, _options(settings, "globus"))


def _hpc_ports(settings: Settings, db: Any, clock: ClockPort) -> Mapping[str, HPCJobPort]:
    ports: dict[str, HPCJobPort] = {}
    for facility, adapter in settings.adapters.hpc.items():
        if adapter == "local":
            from splash_core.adapters.local.jobs import LocalJobs
            from splash_core.adapters.local.templates import local_job_templates

            ports[facility] = LocalJobs(
                db,
                local_job_templates(),
                log_dir=workspace_of(settings) / "jobs",
                facility=facility,
                clock=clock,
            )
        elif adapter == "sfapi":
            from splash_core.adapters.sfapi.factory import build_sfapi_jobs
            from splash_core.entrypoints.config import resolve_secret

            ports[facility] = build_sfapi_jobs(
                client_id=resolve_secret(settings.secrets["sfapi_client_id"]),
                private_key_file=settings.secrets["sfapi_private_key"].name,
                options=_options(settings, "sfapi"),
                facility=facility,
            )
        elif adapter == "globus_compute":
            from splash_core.adapters.globus_compute.factory import build_globus_compute_jobs
            from splash_core.entrypoints.config import resolve_secret

            ports[facility] = build_globus_compute_jobs(
                client_id=resolve_secret(settings.secrets["globus_client_id"]),
                client_secret=resolve_secret(settings.secrets["globus_client_secret"]),
                options=_options(settings, "globus_compute"),
                facility=facility,
                clock=clock,
            )
        else:
            raise ConfigError(f"adapters.hpc.{facility}: adapter {adapter!r} is not available in this build")
    return ports


def _hpss_tape(settings: Settings) -> TapeArchivePort:
    from splash_core.adapters.sfapi.factory import build_hpss_archive
    from splash_core.entrypoints.config import resolve_secret

    return build_hpss_archive(
        client_id=resolve_secret(settings.secrets["sfapi_client_id"]),
        private_key_file=settings.secrets["sfapi_private_key"].name,
        options=_options(settings, "sfapi"),
        hpss_options=_options(settings, "hpss"),
    )


def _prefect_scheduler(settings: Settings, db: Any) -> SchedulerPort:
    # scheduled runs become Prefect flow runs; the SQLite scheduler in the ledger's database stays
    # the record of what is owed, so a lost Prefect database loses no scheduled work
    from splash_core.adapters.prefect.scheduler import PrefectScheduler
    from splash_core.entrypoints.prefect.options import prefect_options

    options = prefect_options(settings)
    return PrefectScheduler(api_url=options.api_url, namespace=options.work_pool_prefix, mirror=_sqlite_scheduler(db))


def adapter_option_problems(settings: Settings) -> list[str]:
    """Validate the ``options`` block of every selected adapter, without credentials or network.

    Returns every problem found, each naming its key path (empty when all is well).
    """
    selected = {
        settings.adapters.transfer,
        settings.adapters.storage,
        settings.adapters.tape,
        settings.adapters.catalog,
        settings.adapters.scheduler,
        *settings.adapters.hpc.values(),
    }
    problems: list[str] = []

    def check(name: str, fn: Any) -> None:
        try:
            fn()
        except ConfigError as exc:
            problems.extend(exc.problems)

    if "globus" in selected:
        from splash_core.adapters.globus.options import adapter_kwargs

        check("globus", lambda: adapter_kwargs(_options(settings, "globus"), for_storage=False, where="options.globus"))
    if "sfapi" in selected or "hpss" in selected:
        from splash_core.adapters.sfapi.factory import hpss_settings, sfapi_settings

        check("sfapi", lambda: sfapi_settings(_options(settings, "sfapi")))
        if "hpss" in selected:
            check("hpss", lambda: hpss_settings(_options(settings, "hpss")))
    if "prefect" in selected:
        from splash_core.entrypoints.prefect.options import prefect_options

        check("prefect", lambda: prefect_options(settings))
    if "scicat" in selected:
        from splash_core.adapters.scicat.settings import scicat_settings

        check("scicat", lambda: scicat_settings(_options(settings, "scicat")))
    if "globus_compute" in selected:
        from splash_core.adapters.globus_compute.factory import globus_compute_settings

        check("globus_compute", lambda: globus_compute_settings(_options(settings, "globus_compute")))
    return problems


def _scicat_catalog(settings: Settings) -> CatalogPort:
    from splash_core.adapters.scicat.factory import build_scicat_catalog
    from splash_core.entrypoints.config import resolve_secret

    return build_scicat_catalog(
        username=resolve_secret(settings.secrets["scicat_username"]),
        password=resolve_secret(settings.secrets["scicat_password"]),
        options=_options(settings, "scicat"),
    )


def _unavailable(port: str, name: str) -> Any:
    raise ConfigError(f"adapters.{port}: adapter {name!r} is not available in this build")


class Container(containers.DeclarativeContainer):
    """One provider per port, chosen by ``settings.adapters``."""

    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(_system_clock)
    database = providers.Singleton(_database, settings)

    ledger = providers.Selector(
        providers.Callable(lambda s: s.adapters.ledger, settings),
        sqlite=providers.Singleton(_sqlite_ledger, database),
    )
    catalog = providers.Selector(
        providers.Callable(lambda s: s.adapters.catalog, settings),
        local=providers.Singleton(_sqlite_catalog, database),
        scicat=providers.Singleton(_scicat_catalog, settings),
    )
    scheduler = providers.Selector(
        providers.Callable(lambda s: s.adapters.scheduler, settings),
        local=providers.Singleton(_sqlite_scheduler, database),
        prefect=providers.Singleton(_prefect_scheduler, settings, database),
    )
    globus_client = providers.Singleton(_globus_client, settings)
    storage = providers.Selector(
        providers.Callable(lambda s: s.adapters.storage, settings),
        local=providers.Singleton(_local_storage),
        globus=providers.Singleton(_globus_storage, settings, globus_client),
    )
    transfer = providers.Selector(
        providers.Callable(lambda s: s.adapters.transfer, settings),
        local=providers.Singleton(_local_transfer, database),
        globus=providers.Singleton(_globus_transfer, settings, globus_client),
    )
    tape = providers.Selector(
        providers.Callable(lambda s: s.adapters.tape, settings),
        local=providers.Singleton(_local_tape, settings),
        hpss=providers.Singleton(_hpss_tape, settings),
        none=providers.Singleton(_unavailable, "tape", "none"),
    )
    hpc = providers.Singleton(_hpc_ports, settings, database, clock)


def build_container(settings: Settings) -> Container:
    """A container for ``settings``."""
    return Container(settings=settings)
