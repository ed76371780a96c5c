"""A tiny in-memory Globus Transfer service served through ``responses`` callbacks.

It holds files, folders and symlinks per collection and answers the calls the Globus
adapters make: submission ids, transfer and delete submission (with submission-id
deduplication), task documents, successful transfers (paginated), events, cancel, ls
(paginated), stat and mkdir. Paths resolve through symlinks the way a collection would;
modification times have whole-second resolution, as Globus reports them.

Faults can be injected: HTTP errors on the next calls, tasks that fail, tasks that stall
on a fatal event, tasks that hang (stay ACTIVE, copying nothing) until cancelled, tasks
that stay ACTIVE for a few polls, tasks that leave a file out of their successful list.
"""

from __future__ import annotations

import itertools
import json
import posixpath
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import attrs
import responses
from requests import PreparedRequest

from splash_core.domain.models import Endpoint
from splash_core.domain.paths import RelPath

BASE = "https://transfer.api.globus.org/v0.10"
START = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
TASK_SECONDS = 10

_Reply = tuple[int, dict[str, str], str]
_Key = tuple[str, str]


def _reply(status: int, body: dict[str, Any]) -> _Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(body)


def _error(status: int, code: str, message: str) -> _Reply:
    return _reply(status, {"code": code, "message": message, "request_id": "sim", "resource": "sim"})


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")


def _below(path: str, folder: str) -> bool:
    return folder == "/" or path == folder or path.startswith(folder.rstrip("/") + "/")


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
    hangs: bool = False
    status: str = "ACTIVE"
    stall_code: str | None = None
    stall_path: str = ""
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
        self.files: dict[_Key, bytes] = {}
        self.mtimes: dict[_Key, float] = {}
        self.dirs: set[_Key] = set()
        self.links: dict[_Key, str] = {}
        self.tasks: dict[str, SimTask] = {}
        self.submissions: dict[str, str] = {}
        self.page_size = page_size
        self.polls_until_done = polls_until_done
        self.faults: list[HttpFault] = []
        self.calls: list[tuple[str, str]] = []
        self.cancelled: list[str] = []
        self.next_task_stalls_with: str | None = None
        self.next_task_fails_with: str | None = None
        self.next_task_hangs = False
        self.next_task_omits: frozenset[str] = frozenset()
        self._ids = itertools.count(1)

    # --- the file system (seen from outside the service) --------------------------

    def mkdirs(self, collection: str, path: str) -> None:
        """Create ``path`` and its parents."""
        path = posixpath.normpath(path)
        while True:
            self.dirs.add((collection, path))
            if path == "/":
                return
            path = posixpath.dirname(path)

    def put(self, collection: str, path: str, data: bytes, mtime: float | None = None) -> None:
        """Write a file (parents created)."""
        path = posixpath.normpath(path)
        self.mkdirs(collection, posixpath.dirname(path))
        self.files[(collection, path)] = data
        self.mtimes[(collection, path)] = START if mtime is None else mtime

    def read(self, collection: str, path: str) -> bytes | None:
        """The file's bytes, or None."""
        return self.files.get((collection, posixpath.normpath(path)))

    def symlink(self, collection: str, path: str, target: str) -> None:
        """Make ``path`` a symlink to ``target`` (absolute, or relative to the link's folder)."""
        path = posixpath.normpath(path)
        self.mkdirs(collection, posixpath.dirname(path))
        self.links[(collection, path)] = target

    def lexists(self, collection: str, path: str) -> bool:
        """Whether a file, folder or link is at ``path`` itself (links not followed)."""
        key = (collection, posixpath.normpath(path))
        return key in self.files or key in self.dirs or key in self.links

    def is_dir(self, collection: str, path: str) -> bool:
        """Whether ``path`` is a folder."""
        return (collection, posixpath.normpath(path)) in self.dirs

    def files_below(self, collection: str, root: str) -> dict[str, bytes]:
        """Every file below ``root`` (links not followed), by path relative to it."""
        root = posixpath.normpath(root)
        return {
            posixpath.relpath(path, root): data
            for (coll, path), data in self.files.items()
            if coll == collection and _below(path, root) and path != root
        }

    # endpoint-relative helpers, what the contract environments need

    def put_at(self, endpoint: Endpoint, path: RelPath | str, data: bytes, mtime: float | None = None) -> RelPath:
        """Write a file below an endpoint's root (the root is created too)."""
        rel = path if isinstance(path, RelPath) else RelPath.parse(path)
        self.mkdirs(_collection(endpoint), endpoint.root_path)
        self.put(_collection(endpoint), endpoint.full_path(rel), data, mtime)
        return rel

    def read_at(self, endpoint: Endpoint, path: RelPath | str) -> bytes | None:
        """A file's bytes below an endpoint's root, or None."""
        rel = path if isinstance(path, RelPath) else RelPath.parse(path)
        return self.read(_collection(endpoint), endpoint.full_path(rel))

    # --- path resolution (how the collection itself sees paths) -------------------

    def _resolve(self, collection: str, path: str, *, follow_last: bool = True) -> str:
        """``path`` with every symlink on the way resolved (the last one only if ``follow_last``)."""
        path = posixpath.normpath(path)
        for _ in range(40):
            parts = path.strip("/").split("/") if path != "/" else []
            last = len(parts) if follow_last else len(parts) - 1
            for i in range(last):
                prefix = "/" + "/".join(parts[: i + 1])
                target = self.links.get((collection, prefix))
                if target is not None:
                    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(prefix), target))
                    path = posixpath.normpath(posixpath.join(resolved, *parts[i + 1 :]))
                    break
            else:
                return path
        raise RuntimeError(f"symlink loop at {path}")

    def _lexical(self, collection: str, path: str) -> str:
        """``path`` with its folders resolved but its last component left as it is."""
        return self._resolve(collection, path, follow_last=False)

    def _kind(self, collection: str, real: str) -> str | None:
        if (collection, real) in self.dirs:
            return "dir"
        if (collection, real) in self.files:
            return "file"
        return None

    def _entry(self, collection: str, lexical: str) -> dict[str, Any] | None:
        link = self.links.get((collection, lexical))
        real = self._resolve(collection, lexical) if link is not None else lexical
        kind = self._kind(collection, real)
        if kind is None and link is None:
            return None
        return {
            "DATA_TYPE": "file",
            "name": posixpath.basename(lexical) or "/",
            "type": kind or "invalid_symlink",
            "size": len(self.files[(collection, real)]) if kind == "file" else 4096,
            "last_modified": _timestamp(self.mtimes.get((collection, real), START)),
            "link_target": link,
            "permissions": "0755" if kind == "dir" else "0644",
            "user": "sim",
            "group": "sim",
        }

    def _children(self, collection: str, folder: str) -> list[dict[str, Any]]:
        names: set[str] = set()
        for coll, path in (*self.dirs, *self.files, *self.links):
            if coll == collection and path != folder and posixpath.dirname(path) == folder:
                names.add(posixpath.basename(path))
        entries = (self._entry(collection, posixpath.join(folder, name)) for name in sorted(names))
        return [e for e in entries if e is not None]

    # --- wiring ---------------------------------------------------------------------

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

    # --- submission -------------------------------------------------------------------

    def _submission_id(self, request: PreparedRequest, match: re.Match[str]) -> _Reply:
        return _reply(200, {"DATA_TYPE": "submission_id", "value": str(uuid.uuid4())})

    def _new_task(self, kind: str, doc: dict[str, Any]) -> _Reply:
        submission_id = str(doc.get("submission_id"))
        result = {"DATA_TYPE": f"{kind.lower()}_result", "submission_id": submission_id}
        if submission_id in self.submissions:
            task_id = self.submissions[submission_id]
            return _reply(200, {**result, "code": "Duplicate", "task_id": task_id, "message": "duplicate"})
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
            hangs=self.next_task_hangs,
            stall_code=self.next_task_stalls_with,
            fail_code=self.next_task_fails_with,
            omit_from_successful=self.next_task_omits,
        )
        self.next_task_stalls_with = self.next_task_fails_with = None
        self.next_task_hangs = False
        self.next_task_omits = frozenset()
        return _reply(202, {**result, "code": "Accepted", "task_id": task_id, "message": "accepted"})

    def _submit_transfer(self, request: PreparedRequest, match: re.Match[str]) -> _Reply:
        return self._new_task("TRANSFER", self._body(request))

    def _submit_delete(self, request: PreparedRequest, match: re.Match[str]) -> _Reply:
        return self._new_task("DELETE", self._body(request))

    # --- running tasks ----------------------------------------------------------------

    def _stall(self, task: SimTask, code: str, path: str) -> None:
        """Globus keeps retrying errors like these; the task stays ACTIVE with an error event."""
        task.stall_code, task.stall_path = code, path
        if not task.events:
            collection = task.document.get("source_endpoint", task.document.get("endpoint"))
            details = (
                f"Error (transfer)\nEndpoint: sim ({collection})\nServer: sim:443\nFile: {path}\n"
                f"Command: RETR {path}\nMessage: Fatal FTP Response\n---\n550 {code.lower()}\n"
            )
            task.events.append(
                {
                    "DATA_TYPE": "event",
                    "code": code,
                    "is_error": True,
                    "description": code.lower().replace("_", " "),
                    "details": details,
                    "time": _timestamp(START),
                }
            )

    def _advance(self, task: SimTask) -> None:
        if task.status != "ACTIVE" or task.hangs:
            return
        if task.polls_left > 0:
            task.polls_left -= 1
            return
        if task.stall_code is not None:
            first = task.document["DATA"][0]
            self._stall(task, task.stall_code, first.get("source_path", first.get("path", "")))
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
        plan = []
        for item in doc["DATA"]:
            real = self._resolve(source, item["source_path"])
            if (source, real) not in self.files:
                self._stall(task, "FILE_NOT_FOUND", item["source_path"])
                return
            plan.append((item, self.files[(source, real)], self.mtimes[(source, real)]))
        for item, data, mtime in plan:
            dest = self._resolve(destination, item["destination_path"])
            if doc.get("sync_level") == 3 and self.files.get((destination, dest)) == data:
                task.files_skipped += 1
                continue
            self.put(destination, dest, data, mtime if doc.get("preserve_timestamp") else START + TASK_SECONDS)
            task.bytes_transferred += len(data)
            if dest not in task.omit_from_successful:
                task.successful.append(
                    {
                        "DATA_TYPE": "successful_transfer",
                        "source_path": item["source_path"],
                        "destination_path": item["destination_path"],
                    }
                )
        task.status = "SUCCEEDED"

    def _run_delete(self, task: SimTask) -> None:
        doc = task.document
        collection = str(doc["endpoint"])
        for item in doc["DATA"]:
            path = self._lexical(collection, item["path"])
            key = (collection, path)
            if key in self.links:  # a link is removed, never followed
                del self.links[key]
            elif key in self.files:
                del self.files[key]
            elif key in self.dirs and doc.get("recursive"):
                self.files = {k: v for k, v in self.files.items() if not (k[0] == collection and _below(k[1], path))}
                self.links = {k: v for k, v in self.links.items() if not (k[0] == collection and _below(k[1], path))}
                self.dirs = {d for d in self.dirs if not (d[0] == collection and _below(d[1], path))}
            else:
                task.status = "FAILED"
                code = "IS_A_DIRECTORY" if key in self.dirs else "FILE_NOT_FOUND"
                task.fatal_error = {"code": code, "description": f"cannot delete {path}"}
                return
        task.status = "SUCCEEDED"

    def _task_doc(self, task: SimTask) -> dict[str, Any]:
        doc = task.document
        stalled = task.status == "ACTIVE" and bool(task.events)
        done = task.status != "ACTIVE"
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
            "effective_bytes_per_second": task.bytes_transferred // TASK_SECONDS,
            "faults": len(task.events),
            "nice_status": task.stall_code if stalled else (None if done else "OK"),
            "nice_status_short_description": task.stall_code.lower() if stalled and task.stall_code else None,
            "fatal_error": task.fatal_error,
            "request_time": _timestamp(START),
            "completion_time": _timestamp(START + TASK_SECONDS) if done else None,
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
        events = list(reversed(task.events))
        return _reply(200, {"DATA_TYPE": "event_list", "DATA": events, "total": len(events), "offset": 0})

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

    # --- file operations --------------------------------------------------------------

    def _ls(self, request: PreparedRequest, match: re.Match[str]) -> _Reply:
        collection = match.group("coll")
        query = self._query(request)
        real = self._resolve(collection, query.get("path", "/"))
        kind = self._kind(collection, real)
        if kind != "dir":
            if kind == "file":
                return _error(502, "ExternalError.DirListingFailed.NotDirectory", f"{real} is not a directory")
            return _error(404, "ClientError.NotFound", f"Directory '{real}' not found")
        entries = self._children(collection, real)
        offset, limit = int(query.get("offset") or 0), int(query.get("limit") or 100_000)
        page = entries[offset : offset + limit]
        return _reply(
            200,
            {
                "DATA_TYPE": "file_list",
                "DATA": page,
                "path": real,
                "endpoint": collection,
                "offset": offset,
                "limit": limit,
                "total": len(entries),
                "has_next_page": offset + limit < len(entries),
            },
        )

    def _stat(self, request: PreparedRequest, match: re.Match[str]) -> _Reply:
        collection = match.group("coll")
        path = self._query(request).get("path", "/")
        entry = self._entry(collection, self._lexical(collection, path))
        if entry is None:
            return _error(404, "NotFound", f"Path not found: {path}")
        return _reply(200, entry)

    def _mkdir(self, request: PreparedRequest, match: re.Match[str]) -> _Reply:
        collection = match.group("coll")
        path = self._lexical(collection, self._body(request)["path"])
        if self.lexists(collection, path):
            return _error(502, "ExternalError.MkdirFailed.Exists", f"Path already exists: {path}")
        if self._kind(collection, posixpath.dirname(path)) != "dir":
            return _error(404, "ClientError.NotFound", f"Parent of {path} does not exist")
        self.dirs.add((collection, path))
        return _reply(202, {"DATA_TYPE": "mkdir_result", "code": "DirectoryCreated", "message": "created"})


def _collection(endpoint: Endpoint) -> str:
    assert endpoint.collection_id, f"endpoint {endpoint.name} needs a collection_id in the simulation"
    return endpoint.collection_id
