"""SciCat settings from ``options.scicat``: defaults, the API base, every problem named by its key."""

from __future__ import annotations

from typing import Any

import pytest

from splash_core.adapters.scicat import (
    SCICAT_KEYS,
    SciCatCatalog,
    SciCatSettings,
    build_scicat_catalog,
    scicat_settings,
)
from splash_core.domain.errors import ConfigError, InvalidInput
from tests.unit.adapters.scicat.simulated import PASSWORD, USERNAME, SimulatedSciCat

MINIMAL: dict[str, Any] = {
    "url": "https://scicat.als.lbl.gov",
    "owner_group": "als-8.3.2",
    "contact_email": "beamline832@lbl.gov",
}


def test_minimal_options_and_defaults() -> None:
    """Three keys suffice; owner and investigator default to the owner group."""
    settings = scicat_settings(MINIMAL)
    assert settings.api_base == "https://scicat.als.lbl.gov/api/v3"
    assert settings.owner == settings.principal_investigator == "als-8.3.2"
    assert settings.access_groups == ()
    assert settings.pid("abc") == "splash/abc"
    assert settings.creation_location_of("8.3.2") == "/ALS/8.3.2"
    assert settings.used_software == ("splash_core",)
    assert settings.timeout_s == 30.0


def test_every_key() -> None:
    """Every documented key is read, seconds keys into the ``_s`` fields."""
    options = {
        **MINIMAL,
        "url": "https://scicat.example.org/api/v3/",
        "access_groups": ["als-staff", "8.3.2-users"],
        "pid_prefix": "20.500.12269",
        "owner": "Beamline 8.3.2",
        "principal_investigator": "Dula Parkinson",
        "creation_location": "/LBNL/ALS/{beamline}",
        "used_software": "https://github.com/als-computing/splash_core",
        "timeout_seconds": "12.5",
        "retry_attempts": 2,
        "retry_timeout_seconds": 30,
        "retry_wait_max_seconds": 4,
    }
    assert set(options) == SCICAT_KEYS
    settings = scicat_settings(options)
    assert settings.api_base == "https://scicat.example.org/api/v3"
    assert settings.access_groups == ("als-staff", "8.3.2-users")
    assert settings.pid("k") == "20.500.12269/k"
    assert settings.owner == "Beamline 8.3.2"
    assert settings.principal_investigator == "Dula Parkinson"
    assert settings.creation_location_of("7.3.3") == "/LBNL/ALS/7.3.3"
    assert settings.used_software == ("https://github.com/als-computing/splash_core",)
    assert (settings.timeout_s, settings.retry_attempts, settings.retry_timeout_s, settings.retry_wait_max_s) == (
        12.5,
        2,
        30.0,
        4.0,
    )


def test_every_problem_is_listed_with_its_key_path() -> None:
    """Missing, unknown and invalid keys are all reported at once, each with options.scicat.<key>."""
    with pytest.raises(ConfigError) as info:
        scicat_settings(
            {
                "url": "ftp://scicat",
                "contact_email": "two@lbl.gov; three@lbl.gov",
                "pid_prefix": "/bad prefix",
                "creation_location": "/ALS/{beamline}/{scan}",
                "access_groups": [1, 2],
                "timeout_seconds": -1,
                "retry_attempts": 1.5,
                "retry_timeout_seconds": "soon",
                "ownergroup": "typo",
            }
        )
    problems = info.value.problems
    keys = sorted(p.split(":", 1)[0] for p in problems)
    assert keys == [
        "options.scicat.access_groups",
        "options.scicat.contact_email",
        "options.scicat.creation_location",
        "options.scicat.owner_group",
        "options.scicat.ownergroup",
        "options.scicat.pid_prefix",
        "options.scicat.retry_attempts",
        "options.scicat.retry_timeout_seconds",
        "options.scicat.timeout_seconds",
        "options.scicat.url",
    ]
    assert "options.scicat.owner_group: required" in problems
    assert any("unknown key" in p and "owner_group" in p for p in problems if p.startswith("options.scicat.ownergroup"))
    assert isinstance(info.value, InvalidInput)
    assert "options.scicat.url" in str(info.value)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"url": "https://scicat.example.org/api/v4"}, "url"),
        ({"url": "https://scicat.example.org/?x=1"}, "url"),
        ({"url": 42}, "url"),
        ({"pid_prefix": "a//b"}, "pid_prefix"),
        ({"creation_location": "/ALS/{beamline"}, "creation_location"),
        ({"used_software": ["ok", " "]}, "used_software"),
        ({"owner": "   "}, "owner"),
        ({"retry_attempts": 0}, "retry_attempts"),
        ({"retry_wait_max_seconds": True}, "retry_wait_max_seconds"),
    ],
)
def test_invalid_values_name_their_key(override: dict[str, Any], key: str) -> None:
    """Each bad value is reported under its own key."""
    with pytest.raises(ConfigError) as info:
        scicat_settings({**MINIMAL, **override})
    assert [p.split(":", 1)[0] for p in info.value.problems] == [f"options.scicat.{key}"]


def test_the_block_must_be_a_mapping() -> None:
    """A list where the block should be is refused."""
    with pytest.raises(ConfigError, match=r"options\.scicat: must be a mapping"):
        scicat_settings(["url"])  # type: ignore[arg-type]


def test_settings_made_directly_are_checked_too() -> None:
    """SciCatSettings refuses bad values even when not built from options."""
    with pytest.raises(ConfigError, match=r"options\.scicat\.contact_email"):
        SciCatSettings(url="https://scicat.test", owner_group="g", contact_email="nobody")


def test_build_makes_a_catalog_without_contacting_scicat() -> None:
    """Building validates and returns a catalog; no request is sent until it is used."""
    sim = SimulatedSciCat()
    catalog = build_scicat_catalog(
        username=USERNAME, password=PASSWORD, options={**MINIMAL, "url": "https://scicat.test"}, client=sim.client()
    )
    assert isinstance(catalog, SciCatCatalog)
    assert sim.calls() == 0
    assert PASSWORD not in repr(catalog)
    assert catalog.get("splash/none") is None
    assert sim.logins == 1


def test_build_lists_empty_secrets_with_option_problems_and_never_the_secret() -> None:
    """Empty credentials and bad options come in one ConfigError that shows no secret."""
    with pytest.raises(ConfigError) as info:
        build_scicat_catalog(username=" ", password="", options={"url": "https://scicat.test"})
    assert [p.split(":", 1)[0] for p in info.value.problems] == [
        "secrets.scicat_username",
        "secrets.scicat_password",
        "options.scicat.owner_group",
        "options.scicat.contact_email",
    ]
    with pytest.raises(ConfigError) as info:
        build_scicat_catalog(username=USERNAME, password=PASSWORD, options={})
    assert PASSWORD not in str(info.value)
