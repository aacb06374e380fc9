"""How the suite is spread over pytest-xdist workers (`-n 3`, pyproject's addopts).

Each test module is one unit of work, so module fixtures (a gateway, an imported campus)
are made once. The modules that drive traffic through gateways and measure what comes
back (outages, crashes, failover, clusters, benchmarks) form one unit, `traffic`, run by
one worker one after the other: two of them at once on a small machine would starve
each other's deadlines. The traffic unit goes first and the longest other modules next,
so the workers finish together (xdist hands units out in collection order with
`--no-loadscope-reorder`).

The units are made by a scheduler of our own (`TrafficScheduling`, installed by
tests/conftest.py's `pytest_xdist_make_scheduler`), not by `xdist_group` marks:
`--dist loadgroup` relies on renaming test ids, which pytest 9 no longer lets it do
(the marks were ignored and traffic tests ran side by side).
"""

from __future__ import annotations

import pytest
from xdist.scheduler import LoadScopeScheduling

TRAFFIC = (
    "tests/e2e/bench/",
    "tests/e2e/partitions/",
    "tests/e2e/zones/test_shared_zones.py",
    "tests/e2e/security/test_sim_and_bench_identities.py",
    "tests/e2e/pipeline/test_backpressure.py",
    "tests/e2e/pipeline/test_broker_crash.py",
    "tests/e2e/pipeline/test_clustered_broker.py",
    "tests/e2e/pipeline/test_db_outage.py",
    "tests/e2e/pipeline/test_db_spool.py",
    "tests/e2e/pipeline/test_db_stall.py",
    "tests/e2e/pipeline/test_offline_e2e.py",
    "tests/e2e/pipeline/test_offline_outage.py",
    "tests/e2e/pipeline/test_restart.py",
    "tests/e2e/pipeline/test_restart_pairing.py",
    "tests/e2e/pipeline/test_spool_switch.py",
    "tests/e2e/pipeline/test_workers.py",
    "tests/e2e/security/test_nats_cluster_accounts.py",
)
# Long, but not timing-sensitive: started early on the other workers.
LONG = (
    "tests/gateway/cli/test_demo.py",
    "tests/gateway/services/reports/test_render_and_deliver.py",
    "tests/gateway/cli/test_serve_processes.py",
    "tests/gateway/services/test_import.py",
    "tests/devices/codecs/test_contract_json.py",
    "tests/api/test_response_schemas.py",
    "tests/gateway/services/tracing/test_stored_stays.py",
)


def _rank(path: str) -> int:
    if path.startswith(TRAFFIC):
        return 0
    return 1 if path.startswith(LONG) else 2


def unit_of(nodeid: str) -> str:
    """The unit of work a test belongs to: `traffic`, or its module."""
    path = nodeid.split("::", 1)[0]
    return "traffic" if _rank(path) == 0 else path


def order(items: list[pytest.Item]) -> None:
    """The traffic unit first, the long modules next, the rest as collected (stable: a
    module's tests keep their order)."""
    items.sort(key=lambda item: _rank(item.nodeid.split("::", 1)[0]))


class TrafficScheduling(LoadScopeScheduling):
    """`--dist loadfile`, with every traffic module in one unit."""

    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)
