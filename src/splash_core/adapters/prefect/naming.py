"""Names shared by the Prefect scheduler, the flows and the deployments.

One flow per kind of work (``splash-dispatch``, ``splash-prune``, ...) and one deployment of it
per beamline (``<beamline>-dispatch``, ``<beamline>-prune``, ...), so two beamlines never share
a deployment name. Work pools are per beamline and purpose: ``<prefix>-<beamline>-dispatch``
for the moves, ``<prefix>-<beamline>-prune`` for retention and tape.
"""

from __future__ import annotations

import re

FLOW_DISPATCH = "splash-dispatch"
FLOW_NEW_FILE = "splash-new-file"
FLOW_PRUNE = "splash-prune"
FLOW_ARCHIVE = "splash-archive"
FLOW_FLIGHT_CHECK = "splash-flight-check"
FLOW_RECONCILE = "splash-reconcile"

PURPOSE_DISPATCH = "dispatch"
PURPOSE_PRUNE = "prune"

DEFAULT_PREFIX = "splash"
GLOBAL_SCOPE = "global"

TASK_FLOWS = {"prune": FLOW_PRUNE, "archive": FLOW_ARCHIVE, "flight-check": FLOW_FLIGHT_CHECK}
"""ScheduledTask.kind -> the flow whose deployment carries it out."""

_SAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def slug(value: str) -> str:
    """``value`` with anything but letters, digits, ``_``, ``-`` and ``.`` replaced by ``-``."""
    return _SAFE.sub("-", value).strip("-") or "unnamed"


def deployment_name(beamline: str, kind: str) -> str:
    """The deployment of ``kind`` (``dispatch``, ``prune``, ...) for ``beamline``: ``<beamline>-<kind>``."""
    return f"{slug(beamline)}-{slug(kind)}"


def full_deployment_name(flow: str, beamline: str, kind: str) -> str:
    """``<flow>/<beamline>-<kind>``, the form ``run_deployment`` and ``read_deployment_by_name`` take."""
    return f"{flow}/{deployment_name(beamline, kind)}"


def pool_name(prefix: str, beamline: str, purpose: str) -> str:
    """The work pool of ``beamline`` for ``purpose``: ``<prefix>-<beamline>-<purpose>``."""
    return f"{slug(prefix)}-{slug(beamline)}-{slug(purpose)}"


def task_tag(namespace: str) -> str:
    """The tag on every flow run the scheduler creates for a :class:`ScheduledTask`."""
    return f"{slug(namespace)}-task"


__all__ = [
    "DEFAULT_PREFIX",
    "FLOW_ARCHIVE",
    "FLOW_DISPATCH",
    "FLOW_FLIGHT_CHECK",
    "FLOW_NEW_FILE",
    "FLOW_PRUNE",
    "FLOW_RECONCILE",
    "GLOBAL_SCOPE",
    "PURPOSE_DISPATCH",
    "PURPOSE_PRUNE",
    "TASK_FLOWS",
    "deployment_name",
    "full_deployment_name",
    "pool_name",
    "slug",
    "task_tag",
]
