"""SciCatCatalog against a simulated SciCat: what it writes, idempotency, locations, errors, credentials."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from splash_core.adapters.scicat import SciCatCatalog, SciCatLoginFailed
from splash_core.adapters.scicat._errors import RetryableCatalogError, retry_decision
from splash_core.domain.errors import CatalogError, CatalogUnavailable, CredentialsError
from splash_core.domain.models import CatalogRecord, Checksum, ChecksumAlgorithm, FileRecord
from splash_core.domain.paths import RelPath
from tests.fakes.clock import FakeClock
from tests.unit.adapters.scicat.simulated import BASE, PASSWORD, USERNAME, SimulatedSciCat

P = RelPath.parse
LOCATION = "/data/raw/20250106_scan"


def blake3(i: int) -> Checksum:
    return Checksum(ChecksumAlgorithm.BLAKE3, f"{i:02x}" * 32)


def raw(key: str = "k1", *, files: int | tuple[FileRecord, ...] = 2, **changes: Any) -> CatalogRecord:
    """A raw 8.3.2 record of ``files`` (or that many checksummed files with mtimes)."""
    if isinstance(files, int):
        files = tuple(
            FileRecord(P(f"raw/20250106_scan/{i}.h5"), 100 + i, blake3(i), 1736150400.25 + i) for i in range(files)
        )
    values: dict[str, Any] = {
        "dataset_key": key,
        "beamline": "8.3.2",
        "files": files,
        "location": LOCATION,
        "metadata": {"proposal": "ALS-12345", "sample": "rock"},
    }
    return CatalogRecord(**{**values, **changes})


def pid(key: str = "k1") -> str:
    return f"als.test/{key}"


# --- what goes into SciCat ---------------------------------------------------------------------


def test_a_raw_record_becomes_a_raw_dataset_and_one_origdatablock(sim: SimulatedSciCat, catalog: SciCatCatalog) -> None:
    """Ownership, location, sizes, the newest mtime as creation time, and the files with checksums."""
    assert catalog.ingest(raw()) == pid()
    dataset = sim.datasets[pid()]
    assert dataset["type"] == "raw"
    assert (dataset["owner"], dataset["ownerGroup"], dataset["accessGroups"]) == (
        "als-8.3.2",
        "als-8.3.2",
        ["als-staff"],
    )
    assert dataset["contactEmail"] == "beamline832@lbl.gov"
    assert dataset["principalInvestigator"] == "als-8.3.2"
    assert dataset["creationLocation"] == "/ALS/8.3.2"
    assert dataset["sourceFolder"] == LOCATION
    assert dataset["datasetName"] == "20250106_scan"
    assert (dataset["size"], dataset["numberOfFiles"]) == (201, 2)
    assert dataset["creationTime"] == "2025-01-06T08:00:01.250Z"
    assert dataset["scientificMetadata"]["proposal"] == "ALS-12345"
    assert dataset["scientificMetadata"]["splash_core"]["dataset_key"] == "k1"
    [block] = sim.blocks_of(pid())
    assert block["chkAlg"] == "blake3"
    assert block["size"] == 201
    assert block["dataFileList"][1] == {
        "path": "raw/20250106_scan/1.h5",
        "size": 101,
        "time": "2025-01-06T08:00:01.250Z",
        "chk": "01" * 32,
    }


def test_a_derived_record_links_its_inputs(sim: SimulatedSciCat, catalog: SciCatCatalog) -> None:
    """Any kind but raw is a derived dataset whose inputDatasets are derived_from."""
    record = raw("recon", kind="reconstruct", derived_from=(pid("k1"),), location="/data/scratch/recon")
    catalog.ingest(record)
    dataset = sim.datasets[pid("recon")]
    assert dataset["type"] == "derived"
    assert dataset["inputDatasets"] == [pid("k1")]
    assert dataset["investigator"] == "als-8.3.2"
    assert dataset["usedSoftware"] == ["splash_core"]
    assert "principalInvestigator" not in dataset
    assert "creationLocation" not in dataset
    assert catalog.get(pid("recon")) == record


def test_files_without_a_checksum_have_no_chk(sim: SimulatedSciCat, catalog: SciCatCatalog) -> None:
    """A file with no checksum is listed without chk; a block of such files has no chkAlg."""
    mixed = raw("mixed", files=(*raw(files=1).files, FileRecord(P("raw/20250106_scan/log.txt"), 7, None, 5.0)))
    catalog.ingest(mixed)
    [block] = sim.blocks_of(pid("mixed"))
    assert block["chkAlg"] == "blake3"
    assert "chk" not in block["dataFileList"][1]
    unchecked = raw("plain", files=(FileRecord(P("a.tif"), 1, None, 5.0),))
    catalog.ingest(unchecked)
    [block] = sim.blocks_of(pid("plain"))
    assert "chkAlg" not in block
    assert "chk" not in block["dataFileList"][0]
    assert catalog.get(pid("mixed")) == mixed
    assert catalog.get(pid("plain")) == unchecked


def test_files_without_mtime_come_back_without_one(sim: SimulatedSciCat) -> None:
    """SciCat needs a time per file: the dataset's creation time stands in and is not mistaken for an mtime."""
    catalog = SciCatCatalog(
        sim.settings(), username=USERNAME, password=PASSWORD, client=sim.client(), clock=FakeClock()
    )
    none = raw("none", files=(FileRecord(P("a.h5"), 1, blake3(1)), FileRecord(P("b.h5"), 2, blake3(2))))
    some = raw("some", files=(FileRecord(P("a.h5"), 1, blake3(1)), FileRecord(P("b.h5"), 2, blake3(2), 9.5)))
    catalog.ingest(none)
    catalog.ingest(some)
    assert sim.datasets[pid("none")]["creationTime"] == "2025-01-06T09:00:00.000Z"
    assert {f["time"] for f in sim.blocks_of(pid("none"))[0]["dataFileList"]} == {"2025-01-06T09:00:00.000Z"}
    assert catalog.get(pid("none")) == none
    assert catalog.get(pid("some")) == some
    assert catalog.ingest(none) == pid("none")
    assert sim.datasets[pid("none")]["history"] == []


def test_mixed_checksum_algorithms_get_one_block_each(sim: SimulatedSciCat, catalog: SciCatCatalog) -> None:
    """SciCat has one chkAlg per origdatablock, so each algorithm gets its own block."""
    sha = Checksum(ChecksumAlgorithm.SHA256, "ab" * 32)
    record = raw("algos", files=(*raw(files=1).files, FileRecord(P("x.h5"), 3, sha, 2.0)))
    catalog.ingest(record)
    assert sorted(b["chkAlg"] for b in sim.blocks_of(pid("algos"))) == ["blake3", "sha256"]
    assert catalog.get(pid("algos")) == record
    catalog.ingest(record)
    assert len(sim.blocks_of(pid("algos"))) == 2


def test_a_record_without_files_has_no_block(sim: SimulatedSciCat, catalog: SciCatCatalog) -> None:
    """An empty file list is a dataset with no origdatablock (SciCat refuses empty ones)."""
    record = raw("empty", files=0)
    catalog.ingest(record)
    assert sim.blocks_of(pid("empty")) == []
    assert catalog.get(pid("empty")) == record


def test_the_reserved_metadata_key_is_refused(sim: SimulatedSciCat, catalog: SciCatCatalog) -> None:
    """Metadata may not use splash_core's bookkeeping key; nothing is sent."""
    with pytest.raises(CatalogError, match=r"k1.*'splash_core' is reserved"):
        catalog.ingest(raw(metadata={"splash_core": "mine"}))
    assert sim.calls() == 0


# --- idempotency --------------------------------------------------------------------------------


def test_ingesting_again_changes_nothing(sim: SimulatedSciCat, catalog: SciCatCatalog) -> None:
    """The same record again keeps its pid, its dataset untouched and its single block."""
    first = catalog.ingest(raw())
    assert catalog.ingest(raw()) == first
    assert list(sim.datasets) == [pid()]
    assert sim.datasets[pid()]["history"] == []
    assert len(sim.blocks_of(pid())) == 1


def test_ingesting_more_files_updates_in_place(sim: SimulatedSciCat, catalog: SciCatCatalog) -> None:
    """More files arriving rewrite the one block and the dataset's size, count and metadata."""
    catalog.ingest(raw())
    newer = raw(files=3, metadata={"proposal": "ALS-12345"})
    assert catalog.ingest(newer) == pid()
    [block] = sim.blocks_of(pid())
    assert len(block["dataFileList"]) == 3
    dataset = sim.datasets[pid()]
    assert (dataset["size"], dataset["numberOfFiles"]) == (303, 3)
    assert "sample" not in dataset["scientificMetadata"]
    assert catalog.get(pid()) == newer


def test_a_concurrent_creator_makes_a_409_that_counts_as_found(sim: SimulatedSciCat, catalog: SciCatCatalog) -> None:
    """When the pid appears between lookup and create, the 409 leads to updating that dataset."""
    other = sim.catalog()
    other.ingest(raw())
    sim.fail_next(status=200, path=f"datasets/{pid()}", method="GET")
    assert catalog.ingest(raw(files=3)) == pid()
    assert sim.calls("datasets", "POST") == 2
    assert list(sim.datasets) == [pid()]
    assert sim.datasets[pid()]["numberOfFiles"] == 3


def test_a_duplicate_block_from_an_ambiguous_retry_is_removed(sim: SimulatedSciCat, catalog: SciCatCatalog) -> None:
    """Blocks that list the same files twice are brought back to one."""
    catalog.ingest(raw())
    [block] = sim.blocks_of(pid())
    sim.blocks["f" * 24] = {**block, "_id": "f" * 24}
    catalog.ingest(raw())
    assert len(sim.blocks_of(pid())) == 1
    assert catalog.get(pid()) == raw()


def test_curators_keys_survive_a_reingest_but_do_not_enter_the_record(
    sim: SimulatedSciCat, catalog: SciCatCatalog
) -> None:
    """Keys added in SciCat are kept; get() returns only what splash_core wrote."""
    catalog.ingest(raw())
    sim.datasets[pid()]["scientificMetadata"]["curator_note"] = "beautiful rock"
    catalog.ingest(raw(metadata={"proposal": "ALS-12345"}))
    science = sim.datasets[pid()]["scientificMetadata"]
    assert science["curator_note"] == "beautiful rock"
    assert "sample" not in science
    stored = catalog.get(pid())
    assert stored is not None
    assert stored.metadata == {"proposal": "ALS-12345"}


def test_a_dataset_cannot_change_type(sim: SimulatedSciCat, catalog: SciCatCatalog) -> None:
    """A raw dataset re-ingested as derived is refused with a reason naming the key."""
    catalog.ingest(raw())
    with pytest.raises(CatalogError, match=r"dataset k1 .*raw dataset.*another key"):
        catalog.ingest(raw(kind="multires"))


# --- locations and reading back -----------------------------------------------------------------


def test_locations_are_added_once_and_survive_reingest(sim: SimulatedSciCat, catalog: SciCatCatalog) -> None:
    """add_location appends, ignores repeats and the original location, and re-ingest keeps them."""
    catalog_id = catalog.ingest(raw())
    catalog.add_location(catalog_id, "hpss:/home/a/alsdev/ALS-12345_2025-1.tar")
    catalog.add_location(catalog_id, "hpss:/home/a/alsdev/ALS-12345_2025-1.tar")
    catalog.add_location(catalog_id, LOCATION)
    catalog.add_location(catalog_id, "/global/cfs/cdirs/als/raw/20250106_scan")
    catalog.ingest(raw(files=3))
    assert catalog.locations(catalog_id) == (
        LOCATION,
        "hpss:/home/a/alsdev/ALS-12345_2025-1.tar",
        "/global/cfs/cdirs/als/raw/20250106_scan",
    )
    assert catalog.get(catalog_id) == raw(files=3)
    assert catalog.locations("als.test/unknown") == ()


def test_adding_a_location_to_an_unknown_dataset_fails(catalog: SciCatCatalog) -> None:
    """The error names the id and what to do."""
    with pytest.raises(CatalogError, match=r"no dataset 'als.test/nope'.*ingest it"):
        catalog.add_location("als.test/nope", "hpss:/x.tar")


def test_get_of_unknown_ids_is_none_whether_empty_or_404() -> None:
    """SciCat's empty 200 and a 404 both mean "no such dataset"."""
    router = respx.MockRouter(assert_all_mocked=True)
    router.post(f"{BASE}/auth/login").respond(201, json={"access_token": "t"})
    router.get(f"{BASE}/datasets/als.test%2Fempty").respond(200)
    router.get(f"{BASE}/datasets/als.test%2Fnull").respond(200, text="null")
    router.get(f"{BASE}/datasets/als.test%2Fgone").respond(404, json={"statusCode": 404, "message": "Not Found"})
    sim = SimulatedSciCat()
    catalog = SciCatCatalog(
        sim.settings(),
        username=USERNAME,
        password=PASSWORD,
        client=httpx.Client(transport=httpx.MockTransport(router.handler)),
    )
    assert catalog.get("als.test/empty") is None
    assert catalog.get("als.test/null") is None
    assert catalog.get("als.test/gone") is None


def test_a_dataset_made_elsewhere_is_mapped_from_scicat_fields(sim: SimulatedSciCat, catalog: SciCatCatalog) -> None:
    """Without splash_core's bookkeeping, key, beamline, location and kind come from SciCat's fields."""
    catalog.ingest(raw())  # logs in
    sim.datasets["10.1/abc"] = {
        "pid": "10.1/abc",
        "type": "derived",
        "sourceFolder": "/data/analysis",
        "inputDatasets": ["10.1/raw"],
        "scientificMetadata": {"energy": {"value": 25, "unit": "keV"}, "note": "ok"},
        "ownerGroup": "als-8.3.2",
    }
    sim.blocks["a" * 24] = {
        "_id": "a" * 24,
        "datasetId": "10.1/abc",
        "size": 5,
        "chkAlg": "md5",
        "dataFileList": [{"path": "out.h5", "size": 5, "time": "2024-05-01T10:00:00.000Z", "chk": "AB" * 16}],
    }
    record = catalog.get("10.1/abc")
    assert record == CatalogRecord(
        dataset_key="10.1/abc",
        beamline="",
        files=(
            FileRecord(
                P("out.h5"),
                5,
                Checksum(ChecksumAlgorithm.MD5, "ab" * 16),
                datetime(2024, 5, 1, 10, tzinfo=UTC).timestamp(),
            ),
        ),
        location="/data/analysis",
        metadata={"energy": '{"unit": "keV", "value": 25}', "note": "ok"},
        derived_from=("10.1/raw",),
        kind="derived",
    )


def test_an_absolute_file_path_in_scicat_is_an_error(sim: SimulatedSciCat, catalog: SciCatCatalog) -> None:
    """A file list splash_core cannot represent is reported, naming the dataset and path."""
    catalog.ingest(raw())
    sim.blocks_of(pid())[0]["dataFileList"][0]["path"] = "/etc/passwd"
    with pytest.raises(CatalogError, match=r"als.test/k1.*'/etc/passwd'"):
        catalog.get(pid())


# --- failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 429, 0, -1])
def test_transient_failures_are_retried(sim: SimulatedSciCat, catalog: SciCatCatalog, status: int) -> None:
    """Two failures (5xx, 429, refused connection, timeout) are absorbed by the retries."""
    sim.fail_next(2, status=status, path="datasets")
    assert catalog.ingest(raw()) == pid()
    assert catalog.get(pid()) == raw()


@pytest.mark.parametrize("status", [503, 429, 0, -1])
def test_lasting_outages_raise_catalog_unavailable(sim: SimulatedSciCat, catalog: SciCatCatalog, status: int) -> None:
    """After the bounded retries the domain gets a transient CatalogUnavailable."""
    sim.fail_next(3, status=status)
    with pytest.raises(CatalogUnavailable, match=r"https://scicat.test/api/v3.*retry later") as info:
        catalog.ingest(raw())
    assert info.value.transient
    assert sim.datasets == {}


def test_an_outage_between_dataset_and_block_is_repaired_by_the_retry(
    sim: SimulatedSciCat, catalog: SciCatCatalog
) -> None:
    """A failed origdatablock creation is completed when the whole ingest is retried."""
    sim.fail_next(status=502, path="origdatablocks", method="POST")
    catalog.ingest(raw())
    assert len(sim.blocks_of(pid())) == 1


@pytest.mark.parametrize("status", [400, 422])
def test_rejections_name_the_dataset_key_and_the_reason(
    sim: SimulatedSciCat, catalog: SciCatCatalog, status: int
) -> None:
    """A 400/422 is a permanent CatalogError with the key and SciCat's message, not retried."""
    sim.fail_next(status=status, path="datasets", method="POST", message="sourceFolder must be a string")
    with pytest.raises(CatalogError, match=rf"dataset k1 .*HTTP {status}.*sourceFolder must be a string") as info:
        catalog.ingest(raw())
    assert not isinstance(info.value, CatalogUnavailable)
    assert sim.calls("datasets", "POST") == 1


def test_a_forbidden_request_says_which_setting_matters(sim: SimulatedSciCat, catalog: SciCatCatalog) -> None:
    """A 403 points at the owner group."""
    sim.fail_next(status=403, path="datasets", method="POST", message="Unauthorized to create this dataset")
    with pytest.raises(CatalogError, match=r"HTTP 403: Unauthorized to create this dataset.*owner_group"):
        catalog.ingest(raw())


def test_an_expired_token_means_one_new_login(sim: SimulatedSciCat, catalog: SciCatCatalog) -> None:
    """A 401 is answered by logging in again and repeating the request."""
    catalog.ingest(raw())
    sim.expire_tokens()
    assert catalog.get(pid()) == raw()
    assert sim.logins == 2


def test_a_refused_fresh_token_is_an_error(sim: SimulatedSciCat, catalog: SciCatCatalog) -> None:
    """Only one re-login per request: a second 401 is reported."""
    sim.fail_next(2, status=401, path="datasets")
    with pytest.raises(CatalogError, match="fresh access token"):
        catalog.get(pid())
    assert sim.logins == 2


def test_a_wrong_password_is_refused_without_retries_or_secrets(sim: SimulatedSciCat) -> None:
    """The login failure is a CatalogError and a CredentialsError naming the secrets, not their values."""
    catalog = SciCatCatalog(sim.settings(), username=USERNAME, password="wrong-password", client=sim.client())
    with pytest.raises(SciCatLoginFailed) as info:
        catalog.ingest(raw())
    assert isinstance(info.value, CatalogError)
    assert isinstance(info.value, CredentialsError)
    assert "scicat_password" in str(info.value)
    assert "wrong-password" not in str(info.value)
    assert USERNAME not in str(info.value)
    assert sim.calls("login") == 1


def test_a_login_outage_is_transient(sim: SimulatedSciCat, catalog: SciCatCatalog) -> None:
    """SciCat failing at login is an outage like any other."""
    sim.fail_next(3, status=503, path="auth/login")
    with pytest.raises(CatalogUnavailable, match="could not log in"):
        catalog.ingest(raw())


def test_the_legacy_users_login_is_used_when_auth_login_is_missing() -> None:
    """The older LoopBack backend's Users/login gives the token as ``id``."""
    sim = SimulatedSciCat(legacy=True)
    catalog = sim.catalog()
    assert catalog.ingest(raw()) == pid()
    assert sim.logins == 1


def test_a_wrong_url_is_reported_as_such() -> None:
    """No login endpoint at all means the URL is wrong, not the password."""
    router = respx.MockRouter(assert_all_mocked=True)
    router.post(url__startswith=BASE).respond(404, json={"statusCode": 404})
    sim = SimulatedSciCat()
    client = httpx.Client(transport=httpx.MockTransport(router.handler))
    catalog = SciCatCatalog(sim.settings(), username=USERNAME, password=PASSWORD, client=client)
    with pytest.raises(CatalogError, match=r"no login endpoint.*options\.scicat\.url"):
        catalog.get(pid())


def test_an_answer_that_is_not_json_is_transient(sim: SimulatedSciCat, catalog: SciCatCatalog) -> None:
    """A maintenance page served with 200 is treated as an outage."""
    router = respx.MockRouter(assert_all_mocked=True)
    router.post(f"{BASE}/auth/login").respond(201, json={"access_token": "t"})
    router.get(url__startswith=f"{BASE}/datasets").respond(200, text="<html>maintenance</html>")
    client = httpx.Client(transport=httpx.MockTransport(router.handler))
    catalog = SciCatCatalog(sim.settings(), username=USERNAME, password=PASSWORD, client=client)
    with pytest.raises(CatalogUnavailable, match="not JSON"):
        catalog.get(pid())


def test_no_request_before_first_use(sim: SimulatedSciCat) -> None:
    """Making a catalog contacts nothing and its repr shows no credentials."""
    catalog = sim.catalog()
    assert sim.calls() == 0
    assert PASSWORD not in repr(catalog)
    assert USERNAME not in repr(catalog)


def test_credentials_and_tokens_never_reach_the_logs(
    sim: SimulatedSciCat, catalog: SciCatCatalog, caplog: pytest.LogCaptureFixture
) -> None:
    """Logins, re-logins, retries and failures log no password, username or token."""
    caplog.set_level(logging.DEBUG)
    catalog.ingest(raw())
    sim.expire_tokens()
    sim.fail_next(2, status=503)
    catalog.add_location(pid(), "hpss:/x.tar")
    sim.fail_next(3, status=0)
    with pytest.raises(CatalogUnavailable) as outage:
        catalog.get(pid())
    bad = SciCatCatalog(sim.settings(), username=USERNAME, password="another-secret", client=sim.client())
    with pytest.raises(SciCatLoginFailed) as refused:
        bad.get(pid())
    assert caplog.records
    text = caplog.text + str(outage.value) + str(refused.value)
    for secret in (PASSWORD, "another-secret", "sim-token", USERNAME):
        assert secret not in text
    for request in sim.requests:
        assert PASSWORD not in str(request.url)
        assert "sim-token" not in str(request.url)


def _router_catalog(router: respx.MockRouter, **overrides: Any) -> SciCatCatalog:
    router.post(f"{BASE}/auth/login").respond(201, json={"access_token": "t"})
    client = httpx.Client(transport=httpx.MockTransport(router.handler))
    return SciCatCatalog(SimulatedSciCat().settings(**overrides), username=USERNAME, password=PASSWORD, client=client)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            {"json": {"statusCode": 400, "message": ["size must be an integer", "type is wrong"]}},
            "size must be an integer; type is wrong",
        ),
        (
            {"json": {"error": {"statusCode": 422, "name": "ValidationError", "message": "pid is taken"}}},
            "pid is taken",
        ),
        ({"json": {"error": "Bad Request"}}, "Bad Request"),
        ({"text": "  plain words  "}, "plain words"),
        ({"text": ""}, "Bad Request"),
    ],
)
def test_scicats_reason_is_read_from_either_backend(answer: dict[str, Any], reason: str) -> None:
    """NestJS messages (text or list), LoopBack ``error.message`` and plain text all reach the error."""
    router = respx.MockRouter(assert_all_mocked=True)
    catalog = _router_catalog(router)
    router.get(url__startswith=f"{BASE}/datasets/").respond(200)
    router.post(f"{BASE}/datasets").respond(400, **answer)
    with pytest.raises(CatalogError) as info:
        catalog.ingest(raw())
    assert str(info.value).endswith(f"(HTTP 400): {reason}")


def test_redirect_loops_are_permanent() -> None:
    """A misconfigured URL that redirects forever is not retried as an outage."""
    router = respx.MockRouter(assert_all_mocked=True)
    router.post(f"{BASE}/auth/login").mock(side_effect=httpx.TooManyRedirects("loop"))
    client = httpx.Client(transport=httpx.MockTransport(router.handler))
    catalog = SciCatCatalog(SimulatedSciCat().settings(), username=USERNAME, password=PASSWORD, client=client)
    with pytest.raises(CatalogError) as info:
        catalog.get(pid())
    assert not isinstance(info.value, CatalogUnavailable)


def test_a_login_answer_without_a_token_is_transient() -> None:
    """A 2xx login without a token is treated as a hiccup, not as a refusal."""
    router = respx.MockRouter(assert_all_mocked=True)
    router.post(f"{BASE}/auth/login").respond(201, json={"userId": "u1"})
    client = httpx.Client(transport=httpx.MockTransport(router.handler))
    catalog = SciCatCatalog(SimulatedSciCat().settings(), username=USERNAME, password=PASSWORD, client=client)
    with pytest.raises(CatalogUnavailable, match="no access token"):
        catalog.get(pid())


def test_retry_after_is_honoured_up_to_the_configured_maximum() -> None:
    """A 429's Retry-After sets the wait (capped); other outages back off; other errors stop."""
    assert retry_decision(RetryableCatalogError("throttled", retry_after=7.0), 5.0) == 5.0
    assert retry_decision(RetryableCatalogError("throttled", retry_after=2.0), 5.0) == 2.0
    assert retry_decision(RetryableCatalogError("down"), 5.0) is True
    assert retry_decision(CatalogError("rejected"), 5.0) is False


def test_the_default_client_is_made_on_first_use_and_closed(sim: SimulatedSciCat) -> None:
    """Without an injected client one is made lazily, closed by close(), and made again if needed."""
    with sim.router, SciCatCatalog(sim.settings(), username=USERNAME, password=PASSWORD) as catalog:
        assert catalog.ingest(raw()) == pid()
        catalog.close()
        assert catalog.get(pid()) == raw()
        assert catalog.settings.owner_group == "als-8.3.2"
