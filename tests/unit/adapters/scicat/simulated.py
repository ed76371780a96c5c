"""A small simulated SciCat v3 backend, served with respx, keeping datasets in dicts.

It behaves like scicat-backend-next where the adapter depends on it: ``POST auth/login``
(or, in ``legacy`` mode, only the LoopBack ``POST Users/login``), bearer tokens, whitelisted
dataset fields per type (an unknown or missing field is a 400 naming it), 409 for a pid that
exists, ``GET datasets/{pid}`` answering 200 with an empty body when there is no such dataset,
origdatablocks whose creation and change recompute the dataset's size and file count, and
times stored at millisecond precision and given back as ``...Z``.

Faults: HTTP errors, refused connections or timeouts for the next requests
(:meth:`SimulatedSciCat.fail_next`), expired tokens (:meth:`SimulatedSciCat.expire_tokens`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import attrs
import httpx
import respx

from splash_core.adapters.scicat import SciCatCatalog, SciCatSettings

SERVER = "https://scicat.test"
BASE = f"{SERVER}/api/v3"
USERNAME = "ingestor"
PASSWORD = "s3cret-Pa55word"

_COMMON = {
    "pid",
    "type",
    "owner",
    "ownerEmail",
    "orcidOfOwner",
    "ownerGroup",
    "accessGroups",
    "contactEmail",
    "sourceFolder",
    "sourceFolderHost",
    "size",
    "packedSize",
    "numberOfFiles",
    "numberOfFilesArchived",
    "creationTime",
    "validationStatus",
    "keywords",
    "description",
    "datasetName",
    "classification",
    "license",
    "isPublished",
    "sharedWith",
    "scientificMetadata",
    "comment",
    "dataQualityMetrics",
    "version",
}
_RAW = {"principalInvestigator", "creationLocation", "startTime", "endTime", "dataFormat", "proposalId", "sampleId"}
_RAW |= {"instrumentId"}
_DERIVED = {"investigator", "inputDatasets", "usedSoftware", "jobParameters", "jobLogData"}
_REQUIRED = {"owner", "ownerGroup", "contactEmail", "sourceFolder", "creationTime", "type"}
_REQUIRED_RAW = {"principalInvestigator", "creationLocation"}
_REQUIRED_DERIVED = {"investigator", "inputDatasets", "usedSoftware"}
_BLOCK = {"datasetId", "size", "chkAlg", "dataFileList", "ownerGroup", "accessGroups", "instrumentGroup"}
_FILE = {"path", "size", "time", "chk", "uid", "gid", "perm"}


def _time(value: Any) -> str | None:
    """``value`` as SciCat stores and returns it (millisecond UTC, ``Z``), or None if it is no time."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _bad(message: str) -> httpx.Response:
    return httpx.Response(400, json={"statusCode": 400, "message": message, "error": "Bad Request"})


@attrs.define
class _Fault:
    status: int
    path: str | None
    method: str | None
    message: str


class SimulatedSciCat:
    """A SciCat v3 backend in memory: ``datasets`` (pid -> dataset), ``blocks`` (id -> origdatablock).

    Args:
        legacy: answer only the old LoopBack ``Users/login`` (``auth/login`` is a 404).
    """

    def __init__(self, *, legacy: bool = False) -> None:
        self.legacy = legacy
        self.datasets: dict[str, dict[str, Any]] = {}
        self.blocks: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.logins = 0
        self.valid_tokens: set[str] = set()
        self.faults: list[_Fault] = []
        self._next_block = 0
        self.router = respx.MockRouter(assert_all_called=False, assert_all_mocked=True)
        self.router.route(url__startswith=BASE).mock(side_effect=self._handle)

    # --- wiring and test controls ------------------------------------------------------

    def client(self) -> httpx.Client:
        """An ``httpx.Client`` whose requests this simulator answers."""
        return httpx.Client(transport=httpx.MockTransport(self.router.handler))

    def settings(self, **overrides: Any) -> SciCatSettings:
        """Settings pointing at the simulator."""
        values: dict[str, Any] = {
            "url": SERVER,
            "owner_group": "als-8.3.2",
            "contact_email": "beamline832@lbl.gov",
            "access_groups": ("als-staff",),
            "pid_prefix": "als.test",
        }
        return SciCatSettings(**{**values, **overrides})

    def catalog(self, **overrides: Any) -> SciCatCatalog:
        """A catalog talking to this simulator with the right account."""
        return SciCatCatalog(self.settings(**overrides), username=USERNAME, password=PASSWORD, client=self.client())

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 503,
        path: str | None = None,
        method: str | None = None,
        message: str = "",
    ) -> None:
        """Answer the next ``n`` requests (to a path containing ``path``, with ``method``) with HTTP ``status``.

        Status 0 refuses the connection; -1 times out after the request was sent; 200 answers an
        empty body (SciCat's "no such dataset").
        """
        self.faults.extend([_Fault(status, path, method, message or f"simulated HTTP {status}")] * n)

    def expire_tokens(self) -> None:
        """Make every issued token invalid (the API answers 401 until the adapter logs in again)."""
        self.valid_tokens.clear()

    def calls(self, path_part: str = "", method: str | None = None) -> int:
        """How many requests went to a path containing ``path_part``."""
        return sum(
            1 for r in self.requests if path_part in unquote(r.url.path) and (method is None or r.method == method)
        )

    def blocks_of(self, pid: str) -> list[dict[str, Any]]:
        """The origdatablocks of dataset ``pid``, oldest first."""
        return [b for b in self.blocks.values() if b["datasetId"] == pid]

    # --- dispatch --------------------------------------------------------------------------

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        raw = request.url.raw_path.decode().split("?", 1)[0][len("/api/v3/") :]
        parts = [unquote(p) for p in raw.split("/")]
        for fault in self.faults:
            if (fault.path is None or fault.path in "/".join(parts)) and fault.method in (None, request.method):
                self.faults.remove(fault)
                if fault.status == 0:
                    raise httpx.ConnectError("simulated: connection refused", request=request)
                if fault.status == -1:
                    raise httpx.ReadTimeout("simulated: no answer in time", request=request)
                if fault.status == 200:
                    return httpx.Response(200)
                headers = {"Retry-After": "7"} if fault.status == 429 else {}
                return httpx.Response(
                    fault.status, headers=headers, json={"statusCode": fault.status, "message": fault.message}
                )
        body: Any = json.loads(request.content) if request.content else None
        if request.method == "POST" and parts == ["auth", "login"]:
            return httpx.Response(404, json={"error": {"statusCode": 404}}) if self.legacy else self._login(body)
        if request.method == "POST" and parts == ["Users", "login"]:
            return self._login(body) if self.legacy else httpx.Response(404, json={"statusCode": 404})
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.valid_tokens:
            return httpx.Response(401, json={"statusCode": 401, "message": "Unauthorized"})
        match request.method, parts:
            case "POST", ["datasets"]:
                return self._create_dataset(body)
            case "GET", ["datasets", pid]:
                dataset = self.datasets.get(pid)
                return httpx.Response(200, json=dataset) if dataset is not None else httpx.Response(200)
            case "PATCH", ["datasets", pid]:
                return self._update_dataset(pid, body)
            case "GET", ["datasets", pid, "origdatablocks"]:
                return httpx.Response(200, json=self.blocks_of(pid))
            case "POST", ["origdatablocks"]:
                return self._create_block(body)
            case "PATCH", ["origdatablocks", block_id]:
                return self._update_block(block_id, body)
            case "DELETE", ["origdatablocks", block_id]:
                block = self.blocks.pop(block_id, None)
                if block is None:
                    return httpx.Response(404, json={"statusCode": 404, "message": f"OrigDatablock: {block_id}"})
                self._recount(block["datasetId"])
                return httpx.Response(200, json=block)
        return httpx.Response(404, json={"statusCode": 404, "message": f"Cannot {request.method} /{raw}"})

    # --- handlers --------------------------------------------------------------------------

    def _login(self, body: Any) -> httpx.Response:
        if not isinstance(body, Mapping) or body.get("username") != USERNAME or body.get("password") != PASSWORD:
            return httpx.Response(401, json={"statusCode": 401, "message": "Unauthorized"})
        self.logins += 1
        token = f"sim-token-{self.logins}"
        self.valid_tokens.add(token)
        if self.legacy:
            return httpx.Response(200, json={"id": token, "ttl": 1209600, "userId": "u1"})
        return httpx.Response(
            201,
            json={"access_token": token, "id": token, "expires_in": 3600, "ttl": 3600, "userId": "u1", "user": {}},
        )

    def _dataset_problems(self, body: Mapping[str, Any], kind: str, *, partial: bool) -> str | None:
        allowed = _COMMON | (_RAW if kind == "raw" else _DERIVED)
        for key in body:
            if key not in allowed:
                constraint = {"whitelistValidation": f"property {key} should not exist"}
                return json.dumps([{"property": key, "constraints": constraint}])
        required = _REQUIRED | (_REQUIRED_RAW if kind == "raw" else _REQUIRED_DERIVED)
        if not partial:
            missing = sorted(required - set(body))
            if missing:
                return f"{', '.join(missing)} must be provided"
        if "creationTime" in body and _time(body["creationTime"]) is None:
            return "creationTime must be a valid ISO 8601 date string"
        if "contactEmail" in body and "@" not in str(body["contactEmail"]):
            return "contactEmail must be an email"
        for key in ("size", "numberOfFiles"):
            if key in body and not isinstance(body[key], int):
                return f"{key} must be an integer number"
        if "scientificMetadata" in body and not isinstance(body["scientificMetadata"], dict):
            return "scientificMetadata must be an object"
        for key in ("accessGroups", "inputDatasets", "usedSoftware", "keywords"):
            if key in body and not (isinstance(body[key], list) and all(isinstance(x, str) for x in body[key])):
                return f"each value in {key} must be a string"
        return None

    def _create_dataset(self, body: Any) -> httpx.Response:
        if not isinstance(body, dict) or body.get("type") not in ("raw", "derived"):
            return _bad("Wrong dataset type!")
        problem = self._dataset_problems(body, body["type"], partial=False)
        if problem:
            return _bad(problem)
        pid = str(body.get("pid") or f"sim/{len(self.datasets) + 1}")
        if pid in self.datasets:
            return httpx.Response(
                409, json={"statusCode": 409, "message": "A dataset with this this unique key already exists!"}
            )
        now = _time(datetime.now(UTC).isoformat())
        dataset = copy.deepcopy(body) | {
            "pid": pid,
            "creationTime": _time(body["creationTime"]),
            "sourceFolder": str(body["sourceFolder"]).rstrip("/") or "/",
            "createdBy": USERNAME,
            "updatedBy": USERNAME,
            "createdAt": now,
            "updatedAt": now,
            "isPublished": False,
            "history": [],
            "version": "3.2.5",
        }
        self.datasets[pid] = dataset
        return httpx.Response(201, json=dataset)

    def _update_dataset(self, pid: str, body: Any) -> httpx.Response:
        dataset = self.datasets.get(pid)
        if dataset is None:
            return httpx.Response(404, json={"statusCode": 404, "message": "Not Found"})
        if not isinstance(body, dict):
            return _bad("a body is required")
        problem = self._dataset_problems(body, dataset["type"], partial=True)
        if problem:
            return _bad(problem)
        dataset.update(copy.deepcopy(body))
        if "creationTime" in body:
            dataset["creationTime"] = _time(body["creationTime"])
        dataset["history"].append({"updatedBy": USERNAME, "fields": sorted(body)})
        return httpx.Response(200, json=dataset)

    def _block_problems(self, body: Mapping[str, Any], *, partial: bool) -> str | None:
        for key in body:
            if key not in _BLOCK:
                return f"property {key} should not exist"
        if not partial and not isinstance(body.get("size"), int):
            return "size must be an integer number"
        if "chkAlg" in body and (not isinstance(body["chkAlg"], str) or not body["chkAlg"]):
            return "chkAlg should not be empty"
        files = body.get("dataFileList")
        if files is None and partial:
            return None
        if not isinstance(files, list) or not files:
            return "dataFileList should not be empty"
        for entry in files:
            if not isinstance(entry, dict):
                return "nested property dataFileList must be either object or array"
            for key in entry:
                if key not in _FILE:
                    return f"property dataFileList.{key} should not exist"
            if not isinstance(entry.get("path"), str):
                return "dataFileList.path must be a string"
            if not isinstance(entry.get("size"), int | float):
                return "dataFileList.size must be a number"
            if _time(entry.get("time")) is None:
                return "dataFileList.time must be a valid ISO 8601 date string"
            if "chk" in entry and not isinstance(entry["chk"], str):
                return "dataFileList.chk must be a string"
        return None

    @staticmethod
    def _stored_files(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**entry, "time": _time(entry["time"])} for entry in files]

    def _create_block(self, body: Any) -> httpx.Response:
        if not isinstance(body, dict):
            return _bad("a body is required")
        dataset = self.datasets.get(str(body.get("datasetId")))
        if dataset is None:
            return httpx.Response(
                404,
                json={"statusCode": 404, "message": f"Dataset: {body.get('datasetId')} not found for attaching"},
            )
        problem = self._block_problems(body, partial=False)
        if problem:
            return _bad(problem)
        self._next_block += 1
        block_id = f"{self._next_block:024x}"
        block = copy.deepcopy(body) | {
            "_id": block_id,
            "ownerGroup": dataset["ownerGroup"],
            "accessGroups": dataset.get("accessGroups", []),
            "dataFileList": self._stored_files(body["dataFileList"]),
        }
        self.blocks[block_id] = block
        self._recount(dataset["pid"])
        return httpx.Response(201, json=block)

    def _update_block(self, block_id: str, body: Any) -> httpx.Response:
        block = self.blocks.get(block_id)
        if block is None:
            return httpx.Response(404, json={"statusCode": 404, "message": f"OrigDatablock: {block_id} not found"})
        if not isinstance(body, dict):
            return _bad("a body is required")
        problem = self._block_problems(body, partial=True)
        if problem:
            return _bad(problem)
        block.update(copy.deepcopy(body))
        if "dataFileList" in body:
            block["dataFileList"] = self._stored_files(body["dataFileList"])
        self._recount(block["datasetId"])
        return httpx.Response(200, json=block)

    def _recount(self, pid: str) -> None:
        dataset = self.datasets.get(pid)
        if dataset is not None:
            blocks = self.blocks_of(pid)
            dataset["size"] = sum(b["size"] for b in blocks)
            dataset["numberOfFiles"] = sum(len(b["dataFileList"]) for b in blocks)


__all__ = ["BASE", "PASSWORD", "SERVER", "USERNAME", "SimulatedSciCat"]
