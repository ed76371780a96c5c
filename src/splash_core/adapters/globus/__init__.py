"""Globus adapters: TransferPort and StoragePort over Globus Transfer, confidential-client auth."""

from splash_core.adapters.globus._retry import RetryPolicy
from splash_core.adapters.globus._tasks import PollPolicy
from splash_core.adapters.globus.auth import GlobusCredentials, build_transfer_client
from splash_core.adapters.globus.storage import GlobusStorage
from splash_core.adapters.globus.transfer import GlobusTransfer, sanitize_label, submission_id_for

__all__ = [
    "GlobusCredentials",
    "GlobusStorage",
    "GlobusTransfer",
    "PollPolicy",
    "RetryPolicy",
    "build_transfer_client",
    "sanitize_label",
    "submission_id_for",
]
