"""The Globus adapters against real Globus collections (marked ``live``; skipped without credentials).

Set, to run them (``nox -s live`` or ``pytest -m live``):

* ``GLOBUS_CLIENT_ID`` and ``GLOBUS_CLIENT_SECRET`` (or ``GLOBUS_CLIENT_SECRET_FILE``):
  a confidential client with access to both collections;
* ``SPLASH_LIVE_GLOBUS_SRC_COLLECTION``: a collection holding a small test file;
* ``SPLASH_LIVE_GLOBUS_DST_COLLECTION``: a collection the client may write and delete in;

and optionally

* ``SPLASH_LIVE_GLOBUS_SRC_ROOT`` (default ``/share/godata``) and
  ``SPLASH_LIVE_GLOBUS_SRC_FILE`` (default ``file1.txt``): the test file, below that root;
* ``SPLASH_LIVE_GLOBUS_DST_ROOT`` (default ``/~/``): where a scratch folder
  ``splash-live-<random>`` is made and removed again;
* ``SPLASH_LIVE_GLOBUS_TIMEOUT_S`` (default 900): how long one transfer may take.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import attrs
import pytest

from splash_core.adapters.globus import GlobusStorage, GlobusTransfer, PollPolicy, build_transfer_client
from splash_core.domain.errors import SourceNotFound
from splash_core.domain.models import Endpoint, FileState, Site, TransferItem, TransferRequest
from splash_core.domain.paths import RelPath

pytestmark = pytest.mark.live

REQUIRED = ("GLOBUS_CLIENT_ID", "SPLASH_LIVE_GLOBUS_SRC_COLLECTION", "SPLASH_LIVE_GLOBUS_DST_COLLECTION")


@attrs.frozen
class LiveGlobus:
    """What the live tests need: both adapters, two endpoints, a test file and a scratch folder."""

    transfer: GlobusTransfer
    storage: GlobusStorage
    source: Endpoint
    destination: Endpoint
    source_file: RelPath
    scratch: RelPath
    timeout_s: float


def _missing() -> list[str]:
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if not (os.environ.get("GLOBUS_CLIENT_SECRET") or os.environ.get("GLOBUS_CLIENT_SECRET_FILE")):
        missing.append("GLOBUS_CLIENT_SECRET (or GLOBUS_CLIENT_SECRET_FILE)")
    return missing


@pytest.fixture(scope="module")
def live() -> Iterator[LiveGlobus]:
    """Real adapters sharing one client; the scratch folder is removed afterwards."""
    missing = _missing()
    if missing:
        pytest.skip(
            "live Globus tests need " + ", ".join(missing) + " (see tests/contract/test_live_globus.py for all "
            "variables: GLOBUS_CLIENT_ID, GLOBUS_CLIENT_SECRET, SPLASH_LIVE_GLOBUS_SRC_COLLECTION, "
            "SPLASH_LIVE_GLOBUS_DST_COLLECTION, optional SPLASH_LIVE_GLOBUS_SRC_ROOT/_SRC_FILE/_DST_ROOT)"
        )
    env = os.environ
    client = build_transfer_client()
    poll = PollPolicy(initial_s=2.0, max_s=15.0)
    setup = LiveGlobus(
        transfer=GlobusTransfer(client, poll=poll),
        storage=GlobusStorage(client, poll=poll),
        source=Endpoint(
            "live_source",
            "globus",
            env.get("SPLASH_LIVE_GLOBUS_SRC_ROOT", "/share/godata"),
            Site.OFF_SITE,
            collection_id=env["SPLASH_LIVE_GLOBUS_SRC_COLLECTION"],
        ),
        destination=Endpoint(
            "live_destination",
            "globus",
            env.get("SPLASH_LIVE_GLOBUS_DST_ROOT", "/~/"),
            Site.OFF_SITE,
            collection_id=env["SPLASH_LIVE_GLOBUS_DST_COLLECTION"],
        ),
        source_file=RelPath.parse(env.get("SPLASH_LIVE_GLOBUS_SRC_FILE", "file1.txt")),
        scratch=RelPath.parse(f"splash-live-{uuid.uuid4().hex[:12]}"),
        timeout_s=float(env.get("SPLASH_LIVE_GLOBUS_TIMEOUT_S", "900")),
    )
    yield setup
    if setup.storage.stat(setup.destination, setup.scratch) is not None:
        setup.storage.delete(setup.destination, setup.scratch, recursive=True)


def test_the_source_file_can_be_seen(live: LiveGlobus) -> None:
    """stat and list find the test file with a size."""
    record = live.storage.stat(live.source, live.source_file)
    assert record is not None
    assert record.size > 0
    assert live.source_file in {r.path for r in live.storage.list(live.source, live.source_file.parent)}


def test_a_file_travels_verified_and_a_resubmission_is_the_same_task(live: LiveGlobus) -> None:
    """One file goes to the scratch folder, verified by Globus; the same key gives the same task."""
    target = live.scratch.join("copy", live.source_file.name)
    request = TransferRequest(
        live.source,
        live.destination,
        (TransferItem(live.source_file, target),),
        label="splash live test",
        idempotency_key=f"live-{live.scratch.value}",
    )

    task = live.transfer.submit(request)
    result = live.transfer.wait(task.task_id, timeout_s=live.timeout_s)

    assert result.ok
    (outcome,) = result.files
    assert outcome.state is FileState.VERIFIED
    assert outcome.verified_by == "globus"
    source_record = live.storage.stat(live.source, live.source_file)
    assert outcome.record is not None
    assert source_record is not None
    assert outcome.record.size == source_record.size
    assert live.transfer.submit(request).task_id == task.task_id


def test_mkdir_and_delete_in_the_scratch_folder(live: LiveGlobus) -> None:
    """A nested folder is created, then deleted recursively."""
    folder = live.scratch.join("made", "by", "mkdir")
    live.storage.mkdir(live.destination, folder)
    assert live.storage.stat(live.destination, folder) is not None

    live.storage.delete(live.destination, live.scratch.join("made"), recursive=True)
    assert live.storage.stat(live.destination, folder) is None


def test_a_missing_source_fails_fast(live: LiveGlobus) -> None:
    """A source that does not exist is reported (and the task cancelled), not waited on until the deadline."""
    request = TransferRequest(
        live.source,
        live.destination,
        (TransferItem(RelPath.parse(f"no-such-file-{uuid.uuid4().hex}"), live.scratch.join("never")),),
        label="splash live test missing source",
        idempotency_key=f"live-missing-{uuid.uuid4().hex}",
    )
    task = live.transfer.submit(request)
    with pytest.raises(SourceNotFound, match=task.task_id):
        live.transfer.wait(task.task_id, timeout_s=live.timeout_s)
