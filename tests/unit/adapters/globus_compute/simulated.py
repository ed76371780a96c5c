"""A stand-in for ``globus_compute_sdk.Client``: the four methods the adapter calls, with a real shell.

Functions and arguments go through the SDK's own serializer (as they would on their way to
the service); a submitted ``ShellFunction`` really runs its command with bash in a scratch
folder, and its result is what ``ShellFunction`` returns. Tasks report a few pending states
before their result. Faults can be injected: SDK exceptions on the next calls of a method,
tasks that hang (stay running), tasks that raise on the endpoint, odd results, and the two
ways the service may answer for a task id it does not know (HTTP 404, or "failed" with a
reason).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import globus_sdk
import requests
from globus_compute_sdk.errors import TaskExecutionFailed
from globus_compute_sdk.sdk.shell_function import ShellResult
from globus_compute_sdk.serialize import ComputeSerializer

from splash_core.adapters.globus_compute import GlobusComputeCredentials
from tests.fakes.clock import FakeClock

ENDPOINT_ID = "0c0ffee0-0000-4000-8000-000000000832"
CLIENT_ID = "c11e0000-0000-4000-8000-000000000001"
CLIENT_SECRET = "s3cr3t-not-for-logs"
API = "https://compute.api.globus.org"


def api_error(status: int, code: str = "Error", message: str = "simulated", method: str = "GET") -> Exception:
    """A ``GlobusAPIError`` as globus-sdk raises it for an HTTP ``status`` answer."""
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps({"code": code, "message": message}).encode()
    response.headers["Content-Type"] = "application/json"
    response.request = requests.Request(method, f"{API}/v2/tasks").prepare()
    response.url = str(response.request.url)
    return globus_sdk.GlobusAPIError(response)


def network_error() -> Exception:
    """A connection failure as globus-sdk raises it."""
    return globus_sdk.GlobusConnectionError("connection refused (simulated)", ConnectionError("refused"))


RUN = object()
"""A :class:`Plan` result meaning "run the command and return what ShellFunction returns"."""


@attrs.define
class Plan:
    """How the next submitted task behaves."""

    pending: Sequence[str] = ("waiting-for-ep", "running")
    hang: bool = False
    exception: str | None = None
    result: Any = RUN
    failed_reason: str | None = None


@attrs.define
class SimTask:
    """One submitted task."""

    task_id: str
    function_id: str
    kwargs: dict[str, Any]
    plan: Plan
    submitted: float
    result: Any = None
    pending: deque[str] = attrs.field(factory=deque)


@attrs.define
class Submission:
    """What one ``batch_run`` sent."""

    endpoint_id: str
    function_id: str
    kwargs: dict[str, Any]
    user_endpoint_config: dict[str, Any] | None
    resource_specification: dict[str, Any] | None


class SimBatch:
    """The ``Batch`` of the stand-in: remembers (serialized) invocations."""

    def __init__(
        self,
        serde: ComputeSerializer,
        resource_specification: dict[str, Any] | None,
        user_endpoint_config: dict[str, Any] | None,
    ) -> None:
        self._serde = serde
        self.resource_specification = resource_specification
        self.user_endpoint_config = user_endpoint_config
        self.items: list[tuple[str, str]] = []

    def add(
        self,
        function_id: str,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.items.append((str(function_id), self._serde.serialize((tuple(args or ()), dict(kwargs or {})))))


class SimulatedCompute:
    """A Globus Compute service and ``Client`` in one, on a fake clock.

    Args:
        workdir: where task commands run.
        clock: stamps submission and execution times.
        unknown_as: ``"404"`` (HTTP 404) or ``"failed"`` (status failed, reason "Unknown task id")
            for task ids nobody issued.
    """

    def __init__(self, workdir: Path, clock: FakeClock, *, unknown_as: str = "404") -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.unknown_as = unknown_as
        self.functions: dict[str, Any] = {}
        self.tasks: dict[str, SimTask] = {}
        self.submissions: list[Submission] = []
        self.calls: list[str] = []
        self.factory_calls: list[GlobusComputeCredentials] = []
        self._faults: dict[str, deque[Exception]] = {}
        self._plans: deque[Plan] = deque()
        self._serde = ComputeSerializer()
        self._ids = itertools.count(1)

    # --- test controls ----------------------------------------------------------

    def client_factory(self, credentials: GlobusComputeCredentials) -> SimulatedCompute:
        """What the adapter calls to get its client."""
        self.factory_calls.append(credentials)
        return self

    def fail_next(self, method: str, error: Exception, count: int = 1) -> None:
        """Raise ``error`` from the next ``count`` calls of ``method``."""
        self._faults.setdefault(method, deque()).extend([error] * count)

    def plan_next(self, **plan: Any) -> None:
        """Make the next submitted task behave as :class:`Plan` says."""
        self._plans.append(Plan(**plan))

    def preregister(self, function: Any) -> str:
        """Register ``function`` out of band (as an admin would); its id."""
        function_id = str(uuid.UUID(int=next(self._ids)))
        self.functions[function_id] = self._serde.deserialize(self._serde.serialize(function))
        return function_id

    def count(self, method: str) -> int:
        """How many times ``method`` was called."""
        return self.calls.count(method)

    def task(self, task_id: str) -> SimTask:
        """A submitted task."""
        return self.tasks[task_id]

    # --- the Client methods ----------------------------------------------------

    def register_function(self, function: Any, description: str | None = None) -> str:
        self._enter("register_function")
        return self.preregister(function)

    def create_batch(
        self,
        task_group_id: str | None = None,
        resource_specification: dict[str, Any] | None = None,
        user_endpoint_config: dict[str, Any] | None = None,
    ) -> SimBatch:
        return SimBatch(self._serde, resource_specification, user_endpoint_config)

    def batch_run(self, endpoint_id: str, batch: SimBatch) -> Mapping[str, Any]:
        self._enter("batch_run")
        if not batch.items:
            raise ValueError("No tasks specified for batch run")
        tasks: dict[str, list[str]] = {}
        for function_id, payload in batch.items:
            if function_id not in self.functions:
                raise api_error(404, "FUNCTION_NOT_FOUND", f"function {function_id} not found", "POST")
            _args, kwargs = self._serde.deserialize(payload)
            task_id = str(uuid.uuid4())
            plan = self._plans.popleft() if self._plans else Plan()
            task = SimTask(
                task_id, function_id, kwargs, plan, self.clock.now().timestamp(), pending=deque(plan.pending)
            )
            if not plan.hang and plan.exception is None and plan.failed_reason is None:
                task.result = self._run(self.functions[function_id], kwargs) if plan.result is RUN else plan.result
            self.tasks[task_id] = task
            self.submissions.append(
                Submission(endpoint_id, function_id, kwargs, batch.user_endpoint_config, batch.resource_specification)
            )
            tasks.setdefault(function_id, []).append(task_id)
        return {"request_id": "sim", "task_group_id": str(uuid.uuid4()), "endpoint_id": endpoint_id, "tasks": tasks}

    def get_task(self, task_id: str) -> Mapping[str, Any]:
        self._enter("get_task")
        task = self.tasks.get(str(task_id))
        if task is None:
            if self.unknown_as == "404":
                raise api_error(404, "TASK_NOT_FOUND", f"Task {task_id} not found")
            return {"pending": False, "status": "failed", "reason": "Unknown task id"}
        if task.plan.hang:
            return {"pending": True, "status": "running"}
        if task.pending:
            return {"pending": True, "status": task.pending.popleft()}
        completion = str(task.submitted + 2.0)
        if task.plan.exception is not None:
            raise TaskExecutionFailed(task.plan.exception, completion)
        if task.plan.failed_reason is not None:
            return {"pending": False, "status": "failed", "reason": task.plan.failed_reason}
        return {
            "pending": False,
            "status": "success",
            "result": task.result,
            "completion_t": completion,
            "details": {
                "task_transitions": {"execution-start": task.submitted + 1.0, "execution-end": task.submitted + 2.0}
            },
        }

    # --- internals ---------------------------------------------------------------

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        faults = self._faults.get(method)
        if faults:
            raise faults.popleft()

    def _run(self, function: Any, kwargs: dict[str, Any]) -> Any:
        """What ``ShellFunction.__call__`` returns, run in the scratch folder."""
        command = function.cmd.format(**kwargs)
        done = subprocess.run(
            ["/bin/bash", "-c", command], cwd=self.workdir, capture_output=True, text=True, timeout=120, check=False
        )
        exception_name = "subprocess.CalledProcessError" if done.returncode else None
        result = {
            "cmd": command,
            "stdout": done.stdout,
            "stderr": done.stderr,
            "returncode": done.returncode,
            "exception_name": exception_name,
        }
        return result if function.return_dict else ShellResult(**result)
