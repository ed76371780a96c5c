"""Prefect as the scheduler: scheduled prunes and archives become scheduled flow runs.

Only this package (and the Prefect entrypoints) import ``prefect``; :mod:`.naming` does not,
and ``PrefectScheduler`` is imported on first use. The flows, deployments and the file watcher
live in :mod:`splash_core.entrypoints.prefect` and :mod:`splash_core.entrypoints.watch`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from splash_core.adapters.prefect.scheduler import PrefectScheduler

__all__ = ["PrefectScheduler"]


def __getattr__(name: str) -> Any:
    if name == "PrefectScheduler":
        from splash_core.adapters.prefect.scheduler import PrefectScheduler

        return PrefectScheduler
    raise AttributeError(f"module 'splash_core.adapters.prefect' has no attribute {name!r}")
