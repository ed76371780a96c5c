"""Prefect as the scheduler: scheduled prunes and archives become scheduled flow runs.

Only this package (and the Prefect entrypoints) import ``prefect``. The flows, deployments and
the file watcher live in :mod:`splash_core.entrypoints.prefect` and
:mod:`splash_core.entrypoints.watch`.
"""

from splash_core.adapters.prefect.scheduler import PrefectScheduler

__all__ = ["PrefectScheduler"]
