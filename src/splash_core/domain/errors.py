"""The error hierarchy: one root, a family per port, leaves that say what happened.

Every message names the thing (path, endpoint, task or job id, config key) and
what to do about it. Secrets never appear in messages. Errors that are worth
retrying carry ``transient = True``; everything else is permanent.
"""

from __future__ import annotations


class SplashError(Exception):
    """Root of every error raised by splash_core."""

    transient: bool = False


class TransientError(SplashError):
    """A failure that may go away if the same call is retried later."""

    transient = True


# --- bad input -------------------------------------------------------------


class InvalidInput(SplashError, ValueError):
    """Input (a path, an argument, a config value) was rejected before anything was written."""


class InvalidPath(InvalidInput):
    """A relative path was empty, absolute, escaping, over-long or had control characters."""


class ConfigError(InvalidInput):
    """The configuration file is missing, unreadable or invalid.

    ``problems`` lists every problem found, each prefixed with its key path.
    """

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


class UnknownEndpoint(InvalidInput, KeyError):
    """An endpoint name is not defined in the configuration."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class UnknownBeamline(InvalidInput, KeyError):
    """A beamline id is not defined in the configuration."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ExportControlViolation(SplashError):
    """Export-controlled data was about to leave the site; nothing was sent."""


class CredentialsError(SplashError):
    """A credential is missing, unreadable, too widely readable or was rejected."""


# --- transfer --------------------------------------------------------------


class TransferError(SplashError):
    """A transfer did not complete and verify."""


class TransientTransferError(TransferError, TransientError):
    """The transfer service is unavailable or throttling; retry later."""


class TransferFailed(TransferError):
    """The transfer task ended in failure (the service said FAILED or a fatal event)."""


class TransferTimeout(TransferError):
    """The transfer did not finish before its deadline and was cancelled."""


class SourceNotFound(TransferError):
    """A file to transfer does not exist at the source."""


class PermissionDenied(TransferError):
    """The service or filesystem refused access."""


class QuotaExceeded(TransferError):
    """The destination is out of space or quota."""


class VerificationFailed(TransferError):
    """A copy at the destination does not match the source (size or checksum)."""


# --- storage ---------------------------------------------------------------


class StorageError(SplashError):
    """A storage operation (stat, list, checksum, delete) failed."""


class TransientStorageError(StorageError, TransientError):
    """The storage service is temporarily unavailable."""


class PathNotFound(StorageError, FileNotFoundError):
    """The path does not exist on the endpoint."""


class PathEscapesRoot(StorageError, InvalidPath):
    """The path resolves (through a symlink) outside the endpoint's root."""


class ChecksumUnsupported(StorageError):
    """The endpoint cannot compute the requested checksum algorithm."""


# --- HPC jobs --------------------------------------------------------------


class JobError(SplashError):
    """An HPC job did not complete successfully."""


class TransientJobError(JobError, TransientError):
    """The job service is unavailable or throttling; retry later."""


class JobNotFound(JobError):
    """The job service does not know the job id."""


class JobFailed(JobError):
    """The job ended in a state other than COMPLETED with exit code 0."""


class JobTimeout(JobError):
    """The job did not finish before its deadline and was cancelled."""


class JobOutputsMissing(JobError):
    """The job reported success but an expected output does not exist."""


# --- tape, catalog, scheduler, ledger --------------------------------------


class TapeError(SplashError):
    """A tape archive or restore did not complete and verify."""


class TransientTapeError(TapeError, TransientError):
    """The tape service (or the job queue in front of it) is unavailable; retry later."""


class CatalogError(SplashError):
    """The catalog rejected a record."""


class CatalogUnavailable(CatalogError, TransientError):
    """The catalog cannot be reached; the record stays in the outbox."""


class SchedulerError(SplashError):
    """A run could not be scheduled."""


class LedgerError(SplashError):
    """The ledger could not record or read an event."""


class PipelineError(SplashError):
    """A pipeline step failed; the steps that depend on it did not run."""

    def __init__(self, message: str, step: str, cause: SplashError | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.cause = cause
