"""A tiny in-memory Globus Transfer service served through ``responses`` callbacks.

It holds files per collection and answers the calls the Globus adapters make:
submission ids, transfer and delete submission (submission-id deduplication included),
task documents, successful transfers (paginated), events, cancel, ls (paginated), stat
and mkdir. Faults can be injected: HTTP errors on the next calls, tasks that fail, tasks
that stall on a fatal event, tasks that stay ACTIVE for a few polls.
"""

from __future__ import annotations

import itertools
import json
import posixpath
import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

import attrs
import responses
from requests import PreparedRequest

from splash_core.domain.models import Endpoint
from splash_core.domain.paths import RelPath

BASE = "https://transfer.api.globus.org/v0.10"
TIMESTAMP = "2026-01-01 00:00:00+00:00"
DONE_TIMESTAMP = "2026-01-01 00:00:10+00:00"

_Reply = tuple[int, dict[str, str], str]


def _reply(status: int, body: dict[str, Any]) -> _Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(body)


def _error(status: int, code: str, message: str) -> _Reply:
    return _reply(status, {"code": code, "message": message, "request_id": "sim", "resource": "sim"})


@attrs.define
class HttpFault:
    """Answer the next ``count`` calls matching ``method`` and ``path`` (a regex) with an error."""

    method: str
    path: str
    status: int
    code: str
    count: int = 1
    headers: dict[str, str] = attrs.field(factory=dict)


@attrs.define
class SimTask:
    """One task as the simulated service sees it."""

    task_id: str
    kind: str  # TRANSFER or DELETE
    document: dict[str, Any]
    label: str
    polls_left: int
    status: str = "ACTIVE"
    stall_code: str | None = None
    fail_code: str | None = None
    events: list[dict[str, Any]] = attrs.field(factory=list)
    successful: list[dict[str, str]] = attrs.field(factory=list)
    files_skipped: int = 0
    bytes_transferred: int = 0
    fatal_error: dict[str, str] | None = None
    omit_from_successful: frozenset[str] = frozenset()


class SimulatedGlobus:
    """An in-memory Globus Transfer service; :meth:`install` registers it on a ``RequestsMock``.

    Args:
        page_size: entries per page of successful transfers (small to exercise paging).
        polls_until_done: how many ``get_task`` answers say ACTIVE before a task runs.
    """

    def __init__(self, *, page_size: int = 2, polls_until_done: int = 0) -> None:
        self.files: dict[tuple[str, str], bytes] = {}
        self.dirs: set[tuple[str, str]] = set()
        self.links: dict[tuple[str, str], str] = {}
        self.tasks: dict[str, SimTask] = {}
        self.submissions: dict[str, str] = {}
        self.page_size = page_size
        self.polls_until_done = polls_until_done
        self.faults: list[HttpFault] = []
        self.calls: list[tuple[str, str]] = []
        self.cancelled: list[str] = []
        self.next_task_stalls_with: str | None = None
        self.next_task_fails_with: str | None = None
        self.next_task_omits: frozenset[str] = frozenset()
        self._ids = itertools.count(1)

    # --- the file system ----------------------------------------------------

    def mkdirs(self, collection: str, path: str) -> None:
        """Create ``path`` and its parents."""
        path = posixpath.normpath(path)
        while True:
            self.dirs.add((collection, path))
            if path == "/":
                return
            path = posixpath.dirname(path)

    def put(self, collection: str, path: str, data: bytes) -> None:
        """Write a file (parents created)."""
        path = posixpath.normpath(path)
        self.mkdirs(collection, posixpath.dirname(path))
        self.files[(collection, path)] = data

    def read(self, collection: str, path: str) -> bytes | None:
        """The file's bytes, or None."""
        return self.files.get((collection, posixpath.normpath(path)))

    def put_at(self, endpoint: Endpoint, path: RelPath, data: bytes) -> None:
        """Write a file below an endpoint's root (what a contract suite's ``put`` needs)."""
        self.mkdirs(self._collection(endpoint), endpoint.root_path)
        self.put(self._collection(endpoint), endpoint.full_path(path), data)

    def read_at(self, endpoint: Endpoint, path: RelPath) -> bytes | None:
        """A file's bytes below an endpoint's root, or None (a contract suite's ``read``)."""
        return self.read(self._collection(endpoint), endpoint.full_path(path))

    @staticmethod
    def _collection(endpoint: Endpoint) -> str:
        assert endpoint.collection_id, f"endpoint {endpoint.name} needs a collection_id in the simulation"
        return endpoint.collection_id

    def symlink(self, collection: str, path: str, target: str) -> None:
        """Make ``path`` a symlink (to a file) pointing at ``target``."""
        self.put(collection, path, b"")
        self.links[(collection, posixpath.normpath(path))] = target

    def is_dir(self, collection: str, path: str) -> bool:
        """Whether ``path`` is a folder."""
        return (collection, posixpath.normpath(path)) in self.dirs

    def _children(self, collection: str, folder: str) -> list[dict[str, Any]]:
        folder = posixpath.normpath(folder)
        names: dict[str, dict[str, Any]] = {}
        for coll, path in self.dirs:
            if coll == collection and path != folder and posixpath.dirname(path) == folder:
                names[posixpath.basename(path)] = self._entry(collection, path)
        for coll, path in self.files:
            if coll == collection and posixpath.dirname(path) == folder:
                names[posixpath.basename(path)] = self._entry(collection, path)
        return [names[n] for n in sorted(names)]

    def _entry(self, collection: str, path: str) -> dict[str, Any]:
        is_dir = (collection, path) in self.dirs
        return {
            "DATA_TYPE": "file",
            "name": posixpath.basename(path) or "/",
            "type": "dir" if is_dir else "file",
            "size": 4096 if is_dir else len(self.files[(collection, path)]),
            "last_modified": TIMESTAMP,
            "link_target": self.links.get((collection, path)),
            "permissions": "0755" if is_dir else "0644",
            "user": "sim",
            "group": "sim",
        }

    # --- wiring ---------------------------------------------------------------

    def install(self, mock: responses.RequestsMock) -> SimulatedGlobus:
        """Register every route on ``mock``."""
        routes: list[tuple[str, str, Callable[[PreparedRequest, re.Match[str]], _Reply]]] = [
            ("GET", r"/submission_id", self._submission_id),
            ("POST", r"/transfer", self._submit_transfer),
            ("POST", r"/delete", self._submit_delete),
            ("GET", r"/task/(?P<task>[^/?]+)/successful_transfers", self._successful),
            ("GET", r"/task/(?P<task>[^/?]+)/event_list", self._event_list),
            ("POST", r"/task/(?P<task>[^/?]+)/cancel", self._cancel),
            ("GET", r"/task/(?P<task>[^/?]+)", self._get_task),
            ("GET", r"/operation/endpoint/(?P<coll>[^/]+)/ls", self._ls),
            ("GET", r"/operation/endpoint/(?P<coll>[^/]+)/stat", self._stat),
            ("POST", r"/operation/endpoint/(?P<coll>[^/]+)/mkdir", self._mkdir),
        ]
        for method, pattern, handler in routes:
            url = re.compile(re.escape(BASE) + pattern + r"(\?.*)?$")
            mock.add_callback(method, url, self._wrap(method, url, handler), content_type="application/json")
        return self

    def fail_next(self, method: str, path: str, status: int, code: str, count: int = 1, **headers: str) -> None:
        """Answer the next ``count`` calls to ``path`` (a regex on the URL path) with an error."""
        self.faults.append(HttpFault(method, path, status, code, count, dict(headers)))

    def _wrap(
        self, method: str, url: re.Pattern[str], handler: Callable[[PreparedRequest, re.Match[str]], _Reply]
    ) -> Callable[[PreparedRequest], _Reply]:
        def callback(request: PreparedRequest) -> _Reply:
            path = urlparse(request.url or "").path
            self.calls.append((method, path))
            for fault in self.faults:
                if fault.count > 0 and fault.method == method and re.search(fault.path, path):
                    fault.count -= 1
                    status, headers, body = _error(fault.status, fault.code, f"injected {fault.code}")
                    return status, {**headers, **fault.headers}, body
            match = url.match(request.url or "")
            assert match is not None
            return handler(request, match)

        return callback

    @staticmethod
    def _query(request: PreparedRequest) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlparse(request.url or "").query).items()}

    @staticmethod
    def _body(request: PreparedRequest) -> dict[str, Any]:
        raw = request.body or b"{}"
        assert isinstance(raw, bytes | str), "the adapters send JSON documents"
        return dict(json.loads(raw))

    # --- submission -------------------------------------------------------------

    def _submission_id(self, request: PreparedRequest, match: re.Match[str]) -> _Reply:
        return _reply(200, {"DATA_TYPE": "submission_id", "value": str(uuid.uuid4())})

    def _new_task(self, kind: str, doc: dict[str, Any]) -> _Reply:
        submission_id = str(doc.get("submission_id"))
        if submission_id in self.submissions:
            task_id = self.submissions[submission_id]
            return _reply(
                200,
                {
                    "DATA_TYPE": f"{kind.lower()}_result",
                    "code": "Duplicate",
                    "task_id": task_id,
                    "submission_id": submission_id,
                    "message": "duplicate submission",
                },
            )
        if not doc.get("DATA"):
            return _error(400, "ClientError.BadRequest.NoTransferItems", "A transfer requires at least one item")
        task_id = str(uuid.UUID(int=next(self._ids)))
        self.submissions[submission_id] = task_id
        self.tasks[task_id] = SimTask(
            task_id=task_id,
            kind=kind,
            document=doc,
            label=str(doc.get("label") or ""),
            polls_left=self.polls_until_done,
            stall_code=self.next_task_stalls_with,
            fail_code=self.next_task_fails_with,
            omit_from_successful=self.next_task_omits,
        )
        self.next_task_stalls_with = self.next_task_fails_with = None
        self.next_task_omits = frozenset()
        return _reply(
            202,
            {
                "DATA_TYPE": f"{kind.lower()}_result",
                "code": "Accepted",
                "task_id": task_id,
                "submission_id": submission_id,
                "message": "accepted",
            },
        )

    def _submit_transfer(self, request: PreparedRequest, match: re.Match[str]) -> _Reply:
        return self._new_task("TRANSFER", self._body(request))

    def _submit_delete(self, request: PreparedRequest, match: re.Match[str]) -> _Reply:
        return self._new_task("DELETE", self._body(request))

    # --- running tasks ----------------------------------------------------------

    def _advance(self, task: SimTask) -> None:
        if task.status != "ACTIVE":
            return
        if task.polls_left > 0:
            task.polls_left -= 1
            return
        if task.stall_code is not None:
            if not task.events:
                task.events.append(
                    {
                        "DATA_TYPE": "event",
                        "code": task.stall_code,
                        "is_error": True,
                        "description": task.stall_code.lower().replace("_", " "),
                        "details": "simulated",
                        "time": TIMESTAMP,
                    }
                )
            return
        if task.fail_code is not None:
            task.status = "FAILED"
            task.fatal_error = {"code": task.fail_code, "description": "simulated failure"}
            return
        if task.kind == "TRANSFER":
            self._run_transfer(task)
        else:
            self._run_delete(task)

    def _run_transfer(self, task: SimTask) -> None:
        doc = task.document
        source, destination = str(doc["source_endpoint"]), str(doc["destination_endpoint"])
        for item in doc["DATA"]:
            if (source, posixpath.normpath(item["source_path"])) not in self.files:
                # Globus keeps retrying a missing source: the task stalls on the event
                task.stall_code = "FILE_NOT_FOUND"
                self._advance(task)
                return
        for item in doc["DATA"]:
            data = self.files[(source, posixpath.normpath(item["source_path"]))]
            dest = posixpath.normpath(item["destination_path"])
            if doc.get("sync_level") == 3 and self.files.get((destination, dest)) == data:
                task.files_skipped += 1
                continue
            self.put(destination, dest, data)
            task.bytes_transferred += len(data)
            if dest not in task.omit_from_successful:
                task.successful.append(
                    {"DATA_TYPE": "successful_transfer", "source_path": item["source_path"], "destination_path": dest}
                )
        task.status = "SUCCEEDED"

    def _run_delete(self, task: SimTask) -> None:
        doc = task.document
        collection = str(doc["endpoint"])
        for item in doc["DATA"]:
            path = posixpath.normpath(item["path"])
            if (collection, path) in self.files:
                del self.files[(collection, path)]
                self.links.pop((collection, path), None)
            elif (collection, path) in self.dirs and doc.get("recursive"):
                inside = path.rstrip("/") + "/"
                self.files = {
                    k: v for k, v in self.files.items() if not (k[0] == collection and k[1].startswith(inside))
                }
                self.dirs = {
                    d for d in self.dirs if not (d[0] == collection and (d[1] == path or d[1].startswith(inside)))
                }
            else:
                task.status = "FAILED"
                task.fatal_error = {
                    "code": "FILE_NOT_FOUND" if (collection, path) not in self.dirs else "IS_A_DIRECTORY",
                    "description": f"cannot delete {path}",
                }
                return
        task.status = "SUCCEEDED"

    def _task_doc(self, task: SimTask) -> dict[str, Any]:
        doc = task.document
        stalled = task.status == "ACTIVE" and bool(task.events)
        return {
            "DATA_TYPE": "task",
            "task_id": task.task_id,
            "type": task.kind,
            "status": task.status,
            "label": task.label,
            "source_endpoint_id": doc.get("source_endpoint"),
            "destination_endpoint_id": doc.get("destination_endpoint", doc.get("endpoint")),
            "files": len(doc.get("DATA") or []),
            "files_skipped": task.files_skipped,
            "files_transferred": len(task.successful),
            "bytes_transferred": task.bytes_transferred,
            "effective_bytes_per_second": task.bytes_transferred // 10,
            "faults": len(task.events),
            "nice_status": task.stall_code if stalled else ("OK" if task.status == "ACTIVE" else None),
            "nice_status_short_description": task.stall_code.lower() if stalled and task.stall_code else None,
            "fatal_error": task.fatal_error,
            "request_time": TIMESTAMP,
            "completion_time": None if task.status == "ACTIVE" else DONE_TIMESTAMP,
        }

    def _find(self, match: re.Match[str]) -> SimTask | None:
        return self.tasks.get(match.group("task"))

    def _get_task(self, request: PreparedRequest, match: re.Match[str]) -> _Reply:
        task = self._find(match)
        if task is None:
            return _error(404, "TaskNotFound", f"Task {match.group('task')} not found")
        self._advance(task)
        return _reply(200, self._task_doc(task))

    def _successful(self, request: PreparedRequest, match: re.Match[str]) -> _Reply:
        task = self._find(match)
        if task is None:
            return _error(404, "TaskNotFound", "no such task")
        start = int(self._query(request).get("marker") or 0)
        page = task.successful[start : start + self.page_size]
        following = start + self.page_size
        marker = str(following) if following < len(task.successful) else None
        return _reply(200, {"DATA_TYPE": "successful_transfers", "DATA": page, "marker": start, "next_marker": marker})

    def _event_list(self, request: PreparedRequest, match: re.Match[str]) -> _Reply:
        task = self._find(match)
        if task is None:
            return _error(404, "TaskNotFound", "no such task")
        return _reply(
            200,
            {
                "DATA_TYPE": "event_list",
                "DATA": list(reversed(task.events)),
                "total": len(task.events),
                "offset": 0,
                "limit": 1000,
            },
        )

    def _cancel(self, request: PreparedRequest, match: re.Match[str]) -> _Reply:
        task = self._find(match)
        if task is None:
            return _error(404, "TaskNotFound", "no such task")
        self.cancelled.append(task.task_id)
        self._advance(task)  # the task went on running until the cancel arrived
        if task.status != "ACTIVE":
            return _reply(200, {"DATA_TYPE": "result", "code": "TaskComplete", "message": "already complete"})
        task.status = "FAILED"
        task.fatal_error = {"code": "CANCELED", "description": "canceled"}
        return _reply(200, {"DATA_TYPE": "result", "code": "Canceled", "message": "The task has been cancelled."})

    # --- file operations --------------------------------------------------------

    def _ls(self, request: PreparedRequest, match: re.Match[str]) -> _Reply:
        collection = match.group("coll")
        query = self._query(request)
        path = posixpath.normpath(query.get("path", "/"))
        if (collection, path) not in self.dirs:
            if (collection, path) in self.files:
                return _error(502, "ExternalError.DirListingFailed.NotDirectory", f"{path} is not a directory")
            return _error(404, "ClientError.NotFound", f"Directory '{path}' not found")
        entries = self._children(collection, path)
        offset, limit = int(query.get("offset") or 0), int(query.get("limit") or 100_000)
        page = entries[offset : offset + limit]
        return _reply(
            200,
            {
                "DATA_TYPE": "file_list",
                "DATA": page,
                "path": path,
                "endpoint": collection,
                "offset": offset,
                "limit": limit,
                "total": len(entries),
                "has_next_page": offset + limit < len(entries),
            },
        )

    def _stat(self, request: PreparedRequest, match: re.Match[str]) -> _Reply:
        collection = match.group("coll")
        path = posixpath.normpath(self._query(request).get("path", "/"))
        if (collection, path) not in self.dirs and (collection, path) not in self.files:
            return _error(404, "NotFound", f"Path not found: {path}")
        return _reply(200, self._entry(collection, path))

    def _mkdir(self, request: PreparedRequest, match: re.Match[str]) -> _Reply:
        collection = match.group("coll")
        path = posixpath.normpath(self._body(request)["path"])
        if (collection, path) in self.dirs or (collection, path) in self.files:
            return _error(502, "ExternalError.MkdirFailed.Exists", f"Path already exists: {path}")
        if (collection, posixpath.dirname(path)) not in self.dirs:
            return _error(404, "ClientError.NotFound", f"Parent of {path} does not exist")
        self.dirs.add((collection, path))
        return _reply(202, {"DATA_TYPE": "mkdir_result", "code": "DirectoryCreated", "message": "created"})
