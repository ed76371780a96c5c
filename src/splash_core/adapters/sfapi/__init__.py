"""NERSC through the Superfacility API: Slurm jobs (:class:`SfapiJobs`) and HPSS tape (:class:`HpssArchive`).

Importing this package reads nothing and contacts nothing; credentials are read on first use.
"""

from splash_core.adapters.sfapi.auth import SfapiCredentials, default_http_client_factory
from splash_core.adapters.sfapi.hpss import HpssArchive
from splash_core.adapters.sfapi.jobs import SfapiJobs
from splash_core.adapters.sfapi.settings import (
    HpssSettings,
    JobKindSettings,
    SfapiSettings,
    SlurmSettings,
    example_kinds,
)

__all__ = [
    "HpssArchive",
    "HpssSettings",
    "JobKindSettings",
    "SfapiCredentials",
    "SfapiJobs",
    "SfapiSettings",
    "SlurmSettings",
    "default_http_client_factory",
    "example_kinds",
]
