"""ALCF (or any Globus Compute endpoint): shell jobs as Globus Compute tasks, :class:`GlobusComputeJobs`.

Importing this package reads nothing and contacts nothing; globus-compute-sdk itself is
imported, and its client built from the confidential client's credentials, on first use.
"""

from splash_core.adapters.globus_compute.client import (
    ClientFactory,
    ComputeClient,
    GlobusComputeCredentials,
    default_client_factory,
)
from splash_core.adapters.globus_compute.factory import (
    GLOBUS_COMPUTE_KEYS,
    build_globus_compute_jobs,
    globus_compute_settings,
)
from splash_core.adapters.globus_compute.jobs import GlobusComputeJobs
from splash_core.adapters.globus_compute.settings import GlobusComputeSettings, JobTemplate, example_templates

__all__ = [
    "GLOBUS_COMPUTE_KEYS",
    "ClientFactory",
    "ComputeClient",
    "GlobusComputeCredentials",
    "GlobusComputeJobs",
    "GlobusComputeSettings",
    "JobTemplate",
    "build_globus_compute_jobs",
    "default_client_factory",
    "example_templates",
    "globus_compute_settings",
]
