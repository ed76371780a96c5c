"""The benchmark scenarios, in report order: name -> (title, run function)."""

from __future__ import annotations

from collections.abc import Callable

from bench.core import Context, ScenarioResult
from bench.scenarios import burst, copy, overhead, prune, recon

Scenario = Callable[[Context], ScenarioResult]

SCENARIOS: dict[str, tuple[str, Scenario]] = {
    module.NAME: (module.TITLE, module.run_scenario) for module in (copy, burst, prune, recon, overhead)
}
"""Every scenario by name (``--only NAME``)."""

__all__ = ["SCENARIOS", "Scenario"]
