"""Plan against a real subscription, read-only (GETs, models.list, usages.list; nothing is created).

Runs only with AZURE_SUBSCRIPTION_ID set and credentials DefaultAzureCredential can use (workload identity
in a pipeline: AZURE_CLIENT_ID + AZURE_TENANT_ID + AZURE_FEDERATED_TOKEN_FILE; or `az login` on a laptop).
FTOPS_LIVE_LOCATION and FTOPS_LIVE_RESOURCE_GROUP choose where to look (defaults: swedencentral, a group name
that need not exist: plan then shows every resource as a create).
"""

from __future__ import annotations

import os
import shutil

import pytest

pytestmark = pytest.mark.live

SUBSCRIPTION = os.environ.get("AZURE_SUBSCRIPTION_ID")
HAS_CREDENTIALS = bool(os.environ.get("AZURE_CLIENT_ID") and os.environ.get("AZURE_TENANT_ID")) or \
    bool(shutil.which("az"))


@pytest.mark.skipif(not (SUBSCRIPTION and HAS_CREDENTIALS),
                    reason="needs AZURE_SUBSCRIPTION_ID and Azure credentials (workload identity or az login)")
def test_plan_reads_a_real_subscription_without_changing_it():
    from infra.azure.plan import make_plan
    from jobs.config.environment import load_environment

    env = load_environment("dev")
    azure = env.azure.model_copy(update={
        "subscription_id": SUBSCRIPTION, "location": os.environ.get("FTOPS_LIVE_LOCATION", "swedencentral"),
        "resource_group": os.environ.get("FTOPS_LIVE_RESOURCE_GROUP", "ftops-live-check-rg")})
    env = env.model_copy(update={"azure": azure})
    plan = make_plan(env)
    assert [c.resource.kind for c in plan.changes][:2] == ["resource_group", "storage_account"]
    assert any(check.source == "models.list" for check in plan.checks), "the live model check did not run"
    assert all(check.ok for check in plan.checks), [c.to_json() for c in plan.checks if not c.ok]
