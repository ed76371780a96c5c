"""Hand a batch to the beamline's dispatch deployment (``run_deployment(..., timeout=0)``).

The watcher uses this with ``--via prefect``; so can any tool that should not wait for the
transfer. The flow run is created and this returns at once; a worker of the beamline's
dispatch pool runs it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from splash_core.adapters.prefect.naming import FLOW_DISPATCH, full_deployment_name
from splash_core.domain.errors import SchedulerError


@contextmanager
def _api(api_url: str | None, what: str) -> Iterator[None]:
    import httpx
    from prefect.exceptions import PrefectException
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = api_url or str(PREFECT_API_URL.value() or "")
    if not url:
        raise SchedulerError(
            f"cannot {what}: no Prefect API configured; set PREFECT_API_URL to the server "
            "(e.g. http://127.0.0.1:4200/api) or options.prefect.api_url"
        )
    try:
        if api_url:
            with temporary_settings(updates={PREFECT_API_URL: api_url}):
                yield
        else:
            yield
    except (PrefectException, httpx.HTTPError, OSError, RuntimeError, ValueError) as exc:
        raise SchedulerError(
            f"Prefect API {url}: cannot {what}: {type(exc).__name__}: {exc}; check that the server is up and "
            "the deployment exists (splash prefect deploy BEAMLINE)"
        ) from exc


def dispatch_deployment(beamline: str) -> str:
    """``splash-dispatch/<beamline>-dispatch``."""
    return full_deployment_name(FLOW_DISPATCH, beamline, "dispatch")


def check_dispatch_deployment(beamline: str, *, api_url: str | None = None) -> str:
    """The id of the beamline's dispatch deployment.

    Raises:
        SchedulerError: the server is unreachable or the deployment does not exist.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    name = dispatch_deployment(beamline)
    with _api(api_url, f"find deployment {name}"), get_client(sync_client=True) as client:
        try:
            return str(client.read_deployment_by_name(name).id)
        except ObjectNotFound:
            raise SchedulerError(
                f"Prefect deployment {name} does not exist; create it with `splash prefect deploy {beamline}`"
            ) from None


def submit_dispatch(
    beamline: str,
    paths: Sequence[str],
    *,
    export_controlled: bool = False,
    api_url: str | None = None,
) -> str:
    """Create a flow run of ``splash-dispatch/<beamline>-dispatch`` for ``paths``; returns its id.

    Raises:
        SchedulerError: the server is unreachable or the deployment does not exist.
    """
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    name = dispatch_deployment(beamline)
    with _api(api_url, f"start {name} for {len(paths)} file(s)"):
        run = run_deployment(
            name,
            parameters={"beamline": beamline, "paths": list(paths), "export_controlled": export_controlled},
            timeout=0,
            as_subflow=False,
            tags=["splash", beamline],
            _sync=True,  # type: ignore[call-arg]  # async_dispatch's switch: never hand back a coroutine
        )
    if not isinstance(run, FlowRun):  # pragma: no cover - _sync=True returns the flow run
        raise SchedulerError(f"run_deployment({name}) did not return a flow run")
    return str(run.id)


__all__ = ["check_dispatch_deployment", "dispatch_deployment", "submit_dispatch"]
