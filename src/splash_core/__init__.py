"""splash_core: move beamline data safely, process it on HPC, catalogue, archive and prune it.

The typed API for other tools::

    from splash_core import open_config, dispatch, move, status

    splash = open_config("splash.yaml")          # or $SPLASH_CONFIG
    report = splash.dispatch("bl832", ["scans/sample.h5"])

Names are imported on first use, so ``import splash_core`` stays cheap (job scripts import
``splash_core.processing`` without loading the orchestration code).
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from splash_core.domain.errors import SplashError
    from splash_core.entrypoints.api import FileStatus, Splash, dispatch, move, open_config, status

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

_LAZY = {
    "FileStatus": "splash_core.entrypoints.api",
    "Splash": "splash_core.entrypoints.api",
    "SplashError": "splash_core.domain.errors",
    "dispatch": "splash_core.entrypoints.api",
    "move": "splash_core.entrypoints.api",
    "open_config": "splash_core.entrypoints.api",
    "status": "splash_core.entrypoints.api",
}

__all__ = [
    "FileStatus",
    "Splash",
    "SplashError",
    "__version__",
    "dispatch",
    "move",
    "open_config",
    "status",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'splash_core' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
