"""A small client for the NERSC Superfacility API v1.2 REST endpoints, on httpx.

Why not ``sfapi_client.Client``: version 0.6.0 (read, not guessed) retries inside every
request with tenacity - ten attempts with real sleeps, on 429/502/503/504 but not 500 - so
retries cannot be bounded or switched off in tests; it builds its own authlib OAuth2 client
with no way to inject a transport or to force a new token after a 401; ``submit_job`` and
``run`` poll their API task forever with ``time.sleep(1)``; job status is cached unless
``cached=False`` is passed (the "job not found right after submit" of the reference, NERSC
sfapi_client issue #93); errors are one ``SfApiError(message)``, so "job not found" can only be
told by its text; and ``JobSqueue`` keeps only the state from its sacct fallback, dropping the
exit code. This module calls the same endpoints with the same parameters (``cached=false``
included) and keeps all of that in our hands: injectable transport and clock, stamina retries,
a token refresh on 401, and exceptions translated into :mod:`splash_core.domain.errors`.

Endpoints used (paths relative to the API base URL):

- ``POST compute/jobs/{machine}`` (``job`` = script, ``isPath`` = false) -> an API task whose
  result carries the Slurm job id;
- ``GET compute/jobs/{machine}?kwargs=jobid=N&sacct=<bool>&cached=false`` -> squeue/sacct rows;
- ``DELETE compute/jobs/{machine}/{jobid}`` -> scancel;
- ``POST utilities/command/{machine}`` (``executable``) -> an API task with the command output;
- ``GET utilities/download/{machine}/{path}`` -> a file's contents;
- ``GET tasks/{id}`` -> an API task's status and result.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import stamina

from splash_core.adapters.sfapi._errors import RetryableJobError
from splash_core.adapters.sfapi.auth import HttpClientFactory, SfapiCredentials, TokenSource
from splash_core.adapters.sfapi.settings import SfapiSettings
from splash_core.domain.errors import CredentialsError, JobError, TransientJobError
from splash_core.ports.clock import ClockPort

logger = logging.getLogger(__name__)

T = TypeVar("T")

_REJECTED_BEFORE_PROCESSING = frozenset({429, 503})
"""Statuses that say the request was not acted on, so even a submission may be repeated."""
_SERVER_TROUBLE = frozenset({500, 502, 504})
_NOT_IN_QUEUE = ("invalid job id", "job not found", "no such job")
_ALREADY_ENDED = ("already completing", "already completed", "already finished", "job has finished", "invalid job id")
_TEMPORARY_SBATCH = ("temporarily unavailable", "temporarily unable", "try again later")


class SfapiApi:
    """The SFAPI calls the adapters need, with bounded retries and domain errors.

    Args:
        credentials: the SFAPI client.
        settings: API URLs, machine, timeouts and retry bounds.
        client_factory: builds the ``httpx.Client`` (tests pass one with a respx transport).
        clock: API task polling sleeps and token expiry go through it.
    """

    def __init__(
        self,
        credentials: SfapiCredentials,
        settings: SfapiSettings,
        *,
        client_factory: HttpClientFactory,
        clock: ClockPort,
    ) -> None:
        self._settings = settings
        self._factory = client_factory
        self._clock = clock
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self._tokens = TokenSource(credentials, settings.token_url, self._http, clock)

    def __repr__(self) -> str:
        return f"SfapiApi({self._settings.api_base_url}, machine={self._settings.machine})"

    @property
    def machine(self) -> str:
        """The machine jobs and commands go to."""
        return self._settings.machine

    def close(self) -> None:
        """Close the HTTP client (a new one is built if the API is used again)."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # --- endpoints -----------------------------------------------------------

    def submit_script(self, script: str, *, job_name: str) -> str:
        """Submit a batch script and return the Slurm job id.

        Raises:
            TransientJobError: the API refused before acting (throttled, unavailable, unreachable);
                nothing was submitted, so trying again later is safe.
            JobError: the submission was refused (e.g. a bad account), or its outcome is unknown
                (the message says to look for ``job_name`` in the queue before resubmitting).
        """
        what = f"submitting job {job_name} to {self.machine}"
        body = self._call(
            "POST",
            f"compute/jobs/{self.machine}",
            what=what,
            data={"job": script, "isPath": "false"},
            retry_safe=False,
            interpret=_json_object,
        )
        if str(body.get("status", "")).upper() != "OK" or not body.get("task_id"):
            raise JobError(f"{what}: the SFAPI refused the submission: {_text(body.get('error'))}")
        task_id = str(body["task_id"])
        try:
            result = self._wait_task(task_id, what=what, timeout_s=self._settings.submit_timeout_s)
        except TransientJobError as exc:
            raise JobError(
                f"{what}: the outcome of submission task {task_id} is unknown ({exc}); look for job name "
                f"{job_name} in the queue (squeue --me) before resubmitting"
            ) from exc
        if str(result.get("status", "")).lower() != "ok":
            error = _text(result.get("error"))
            if any(marker in error.lower() for marker in _TEMPORARY_SBATCH):
                raise TransientJobError(f"{what}: Slurm is temporarily not accepting jobs ({error}); retry later")
            raise JobError(f"{what}: sbatch refused the job: {error}")
        job_id = str(result.get("jobid") or "").strip()
        if not job_id.isdigit():
            raise JobError(
                f"{what}: submission task {task_id} finished without a job id ({_text(result)}); look for "
                f"job name {job_name} in the queue before resubmitting"
            )
        return job_id

    def job_rows(self, job_id: str, *, sacct: bool) -> list[Mapping[str, str]]:
        """The squeue (or sacct) rows for ``job_id``; empty when the job is not there.

        Raises:
            TransientJobError: the API or Slurm could not answer (after bounded retries).
        """
        tool = "sacct" if sacct else "squeue"
        what = f"asking {tool} on {self.machine} about job {job_id}"

        def rows(body: Any) -> list[Mapping[str, str]]:
            body = _json_object(body)
            if str(body.get("status", "")).upper() != "OK":
                error = _text(body.get("error"))
                if any(marker in error.lower() for marker in _NOT_IN_QUEUE):
                    return []
                raise RetryableJobError(f"{what}: {error or 'the SFAPI answered an error'}")
            output = body.get("output") or []
            if not isinstance(output, list):
                raise RetryableJobError(f"{what}: the SFAPI answered rows of an unexpected shape")
            return [
                {str(k): "" if v is None else str(v) for k, v in row.items()} for row in output if isinstance(row, dict)
            ]

        return self._call(
            "GET",
            f"compute/jobs/{self.machine}",
            what=what,
            params={"kwargs": f"jobid={job_id}", "sacct": "true" if sacct else "false", "cached": "false"},
            retry_safe=True,
            interpret=rows,
        )

    def cancel_job(self, job_id: str) -> bool:
        """Cancel ``job_id``; False when Slurm says it has ended already or does not know it.

        Raises:
            JobError: the SFAPI or Slurm refused the cancellation.
        """
        what = f"cancelling job {job_id} on {self.machine}"
        body = self._call(
            "DELETE", f"compute/jobs/{self.machine}/{job_id}", what=what, retry_safe=True, interpret=_json_object
        )
        if str(body.get("status", "OK")).upper() != "OK":
            error = _text(body.get("error"))
            if any(marker in error.lower() for marker in _ALREADY_ENDED):
                return False
            raise JobError(f"{what}: {error}")
        return True

    def run_command(self, command: str, *, what: str) -> str:
        """Run a read-only shell ``command`` on the machine (through the API) and return its output.

        Only for commands that are safe to repeat: the request is retried on server errors.

        Raises:
            TransientJobError: the API could not run it (after bounded retries).
            JobError: the command failed.
        """
        body = self._call(
            "POST",
            f"utilities/command/{self.machine}",
            what=what,
            data={"executable": command},
            retry_safe=True,
            interpret=_json_object,
        )
        if str(body.get("status", "")).upper() != "OK" or not body.get("task_id"):
            raise JobError(f"{what}: the SFAPI refused the command: {_text(body.get('error'))}")
        result = self._wait_task(str(body["task_id"]), what=what, timeout_s=self._settings.command_timeout_s)
        if str(result.get("status", "ok")).lower() == "error" or (result.get("error") and not result.get("output")):
            raise JobError(f"{what}: {_text(result.get('error'))}")
        return _text(result.get("output"))

    def download_text(self, path: str, *, what: str) -> str:
        """The contents of the file at absolute ``path`` on the machine, as text.

        Raises:
            TransientJobError: the API could not answer (after bounded retries).
            JobError: the file cannot be read (e.g. it does not exist).
        """
        body = self._call(
            "GET",
            f"utilities/download/{self.machine}/{quote(path, safe='/')}",
            what=what,
            params={"binary": "false"},
            retry_safe=True,
            interpret=_json_object,
        )
        if str(body.get("status", "")).upper() != "OK":
            raise JobError(f"{what}: {_text(body.get('error'))}")
        data = body.get("file") or ""
        if body.get("is_binary"):
            return base64.b64decode(str(data)).decode("utf-8", "replace")
        return str(data)

    # --- internals -------------------------------------------------------------

    def _wait_task(self, task_id: str, *, what: str, timeout_s: float) -> Mapping[str, Any]:
        deadline = self._clock.monotonic() + timeout_s
        while True:
            body = self._call("GET", f"tasks/{task_id}", what=what, retry_safe=True, interpret=_json_object)
            status = str(body.get("status") or "").lower()
            if status == "completed":
                return _task_result(body.get("result"))
            if status in ("failed", "cancelled"):
                detail = _text(_task_result(body.get("result")).get("error") or body.get("result"))
                raise JobError(f"{what}: SFAPI task {task_id} {status}: {detail}")
            if self._clock.monotonic() >= deadline:
                raise TransientJobError(f"{what}: SFAPI task {task_id} did not finish within {timeout_s:.0f} s")
            self._clock.sleep(self._settings.task_poll_interval_s)

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = self._factory()
            return self._client

    def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        retry_safe: bool,
        interpret: Callable[[Any], T],
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> T:
        s = self._settings
        for attempt in stamina.retry_context(
            on=RetryableJobError,
            attempts=s.retry_attempts,
            timeout=s.retry_timeout_s,
            wait_max=s.retry_wait_max_s,
        ):
            with attempt:
                response = self._send(method, path, what=what, retry_safe=retry_safe, params=params, data=data)
                try:
                    body = response.json()
                except ValueError as exc:
                    raise self._unclear(
                        f"{what}: the SFAPI sent no JSON (HTTP {response.status_code})", retry_safe
                    ) from exc
                try:
                    return interpret(body)
                except RetryableJobError as exc:
                    if retry_safe:
                        raise
                    raise self._unclear(f"{what}: {exc}", retry_safe) from exc
        raise AssertionError("unreachable")  # pragma: no cover - stamina either returns or raises

    def _send(
        self,
        method: str,
        path: str,
        *,
        what: str,
        retry_safe: bool,
        params: Mapping[str, str] | None,
        data: Mapping[str, str] | None,
    ) -> httpx.Response:
        url = f"{self._settings.api_base_url.rstrip('/')}/{path}"
        for refreshed in (False, True):
            token = self._tokens.token()
            try:
                response = self._http().request(
                    method, url, params=params, data=data, headers={"Authorization": f"Bearer {token}"}
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                raise RetryableJobError(f"{what}: the SFAPI cannot be reached ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                raise self._unclear(
                    f"{what}: the connection to the SFAPI failed ({type(exc).__name__})", retry_safe
                ) from exc
            if response.status_code == 401 and not refreshed:
                logger.info("the SFAPI refused the access token (expired?); fetching a new one")
                self._tokens.invalidate(token)
                continue
            self._check_status(response, what=what, retry_safe=retry_safe)
            return response
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _check_status(self, response: httpx.Response, *, what: str, retry_safe: bool) -> None:
        code = response.status_code
        if code < 400:
            return
        detail = f"HTTP {code}{_detail(response)}"
        if code == 401:
            raise CredentialsError(
                f"{what}: the SFAPI refused a freshly issued token ({detail}); check the SFAPI client in Iris"
            )
        if code == 403:
            raise CredentialsError(
                f"{what}: the SFAPI refused the client ({detail}); the client needs a scope that allows this "
                f"(submitting jobs needs a red/amber client) and this host's IP in its allow-list (see Iris)"
            )
        if code in _REJECTED_BEFORE_PROCESSING:
            raise RetryableJobError(f"{what}: the SFAPI is throttling or unavailable ({detail})")
        if code in _SERVER_TROUBLE or code >= 500:
            raise self._unclear(f"{what}: the SFAPI failed ({detail})", retry_safe)
        raise JobError(f"{what}: the SFAPI refused the request ({detail})")

    @staticmethod
    def _unclear(message: str, retry_safe: bool) -> JobError:
        if retry_safe:
            return RetryableJobError(message)
        return JobError(f"{message}; the request may have been acted on, so it is not repeated automatically")


def _json_object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise RetryableJobError("the SFAPI answered something other than a JSON object")
    return body


def _task_result(result: Any) -> Mapping[str, Any]:
    if isinstance(result, dict):
        return result
    if isinstance(result, str) and result.strip():
        try:
            loaded = json.loads(result)
        except ValueError:
            return {"status": "error", "error": result}
        return loaded if isinstance(loaded, dict) else {"status": "error", "error": result}
    return {}


def _text(value: Any, limit: int = 500) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return f": {text[:200]}" if text else ""
    if isinstance(body, dict):
        for key in ("detail", "error", "message"):
            if body.get(key):
                return f": {_text(body[key], 200)}"
    return ""


__all__ = ["SfapiApi"]
