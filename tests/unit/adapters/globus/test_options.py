"""The flat ``globus`` options block becomes adapter keyword arguments, or a ConfigError."""

from __future__ import annotations

import globus_sdk
import pytest

from splash_core.adapters.globus import GlobusStorage, GlobusTransfer, PollPolicy, RetryPolicy
from splash_core.adapters.globus.options import adapter_kwargs
from splash_core.domain.errors import ConfigError


def test_options_fill_policies_and_limits() -> None:
    """Poll and retry keys build policies (defaults for the rest); adapter-specific keys go where they belong."""
    options = {"poll_initial_s": 5, "retry_attempts": 7, "max_resubmits": 2, "delete_timeout_s": 60}

    transfer = adapter_kwargs(options, for_storage=False)
    storage = adapter_kwargs(options, for_storage=True)

    assert transfer == {
        "poll": PollPolicy(initial_s=5.0, max_s=60.0, factor=1.5),
        "retry": RetryPolicy(attempts=7),
        "max_resubmits": 2,
    }
    assert storage["delete_timeout_s"] == 60.0
    assert "max_resubmits" not in storage


def test_bad_options_list_every_problem_with_its_key_path() -> None:
    """Unknown keys and non-positive or non-numeric values are all reported at once."""
    with pytest.raises(ConfigError) as caught:
        adapter_kwargs({"poll_initial": 1, "retry_attempts": 0, "poll_max_s": "soon"}, for_storage=False)

    assert caught.value.problems == (
        "adapter_options.globus.poll_initial: unknown option",
        "adapter_options.globus.poll_max_s: expected a number, got 'soon'",
        "adapter_options.globus.retry_attempts: must be positive, got 0",
    )


def test_inconsistent_poll_options_are_a_config_error() -> None:
    """A first poll interval longer than the longest one is refused."""
    with pytest.raises(ConfigError, match="initial_s <= max_s"):
        adapter_kwargs({"poll_initial_s": 100, "poll_max_s": 10}, for_storage=False)


def test_adapters_can_be_built_from_options() -> None:
    """Both adapters accept the same block."""
    options = {"poll_max_s": 30, "delete_timeout_s": 120, "checksum_failure_limit": 5}
    assert isinstance(GlobusTransfer.from_options(globus_sdk.TransferClient(), options), GlobusTransfer)
    assert isinstance(GlobusStorage.from_options(globus_sdk.TransferClient(), options), GlobusStorage)
