"""The Azure permission map: every call ftops makes is covered by the roles the README tells users to grant and the
roles ftops assigns (built-in definitions transcribed in jobs/access/azure.py), role assignments are limited to
the two roles ftops assigns (an ABAC condition, not User Access Administrator), and a 403 names the missing role."""

from __future__ import annotations

import re
import uuid

import pytest

from infra.azure.desired import ROLE_BLOB_DATA_CONTRIBUTOR, ROLE_OPENAI_CONTRIBUTOR, desired_resources
from jobs.access import azure as access
from jobs.config.environment import load_environment
from tests.conftest import ROOT

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"


def test_the_granted_and_assigned_roles_cover_every_call():
    assert access.uncovered() == []


def test_contributor_alone_cannot_assign_roles_and_resource_group_roles_cannot_list_models():
    without_rbac_admin = tuple(g for g in access.GRANTS if g.role.name != "Role Based Access Control Administrator")
    missing = {c.permission for c in access.uncovered(without_rbac_admin)}
    assert missing == {"Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete"}
    resource_group_only = tuple(g for g in access.GRANTS if g.scope != "subscription")
    needs_subscription = {c.permission for c in access.uncovered(resource_group_only)}
    assert {"Microsoft.CognitiveServices/locations/models/read",
            "Microsoft.CognitiveServices/locations/usages/read"} <= needs_subscription


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n### ", start + len(heading))
    return text[start:end if end != -1 else len(text)]


def test_the_readme_grants_exactly_the_modelled_roles_per_scope():
    azure = _section((ROOT / "README.md").read_text(), "#### Azure")
    for grant in access.GRANTS:
        assert grant.role.name in azure, grant.role.name
    for permission in access.SUBSCRIPTION_ROLE.actions:
        assert permission in azure, permission
    assert access.ASSIGNMENT_CONDITION in azure
    # Named only to say it is no longer needed, never as a role to grant.
    mentions = [line for line in azure.splitlines() if "User Access Administrator" in line]
    assert all("instead of User Access Administrator" in m or "no\nlonger needs" in m or "longer needs User Access"
               in m for m in mentions), mentions


# --- the ABAC condition, evaluated ------------------------------------------------------------------------------

_CLAUSE = re.compile(r"ActionMatches\{'(?P<action>[^']+)'\}\)\)\s+OR\s+\(@(?P<source>Request|Resource)"
                     r"\[Microsoft\.Authorization/roleAssignments:RoleDefinitionId\]\s+ForAnyOfAnyValues:GuidEquals\s+"
                     r"\{(?P<guids>[^}]*)\}\)")


def condition_allows(condition: str, action: str, role_definition_id: str) -> bool:
    """Azure ABAC for the one shape used here: `(!(ActionMatches{a})) OR (@X[...RoleDefinitionId] ForAnyOfAnyValues:
    GuidEquals {ids})` clauses joined by AND. A clause whose action does not match is true; else the role's GUID
    (the last segment of the id, compared case-insensitively) must be listed."""
    clauses = list(_CLAUSE.finditer(condition))
    assert len(clauses) == condition.count("ActionMatches"), "a clause this evaluator does not understand"
    guid = role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()
    for clause in clauses:
        if clause["action"].lower() == action.lower():
            allowed = {g.strip().lower() for g in clause["guids"].split(",")}
            if guid not in allowed:
                return False
    return True


def test_the_condition_allows_the_assignments_ftops_makes_and_nothing_else():
    env = load_environment("dev")
    env = env.model_copy(update={"azure": env.azure.model_copy(update={"pipeline_principal_id": str(uuid.uuid4())})})
    assignments = [r for r in desired_resources(env) if r.kind == "role_assignment"]
    assert len(assignments) == 2
    for resource in assignments:
        role = resource.body["properties"]["roleDefinitionId"]
        for action in ("Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete"):
            assert condition_allows(access.ASSIGNMENT_CONDITION, action, role)
    for action in ("Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete"):
        assert not condition_allows(access.ASSIGNMENT_CONDITION, action, f"/providers/x/roleDefinitions/{OWNER}")
        assert not condition_allows(access.ASSIGNMENT_CONDITION, action,
                                    "/x/roleDefinitions/f58310d9-a9f6-439a-9e8d-f62e7b41a168")  # no self-escalation
    assert set(access.ASSIGNED_ROLES) == {ROLE_OPENAI_CONTRIBUTOR, ROLE_BLOB_DATA_CONTRIBUTOR}


def test_the_emulator_takes_a_conditioned_role_assignment(tmp_path):
    from jobs.local.azure_emulator.app import create_app

    client = create_app(tmp_path, op_delay_s=0).test_client()
    sub = "00000000-0000-4000-8000-000000000000"
    headers = {"Authorization": "Bearer x"}
    client.put(f"/subscriptions/{sub}/resourceGroups/rg?api-version=2021-04-01", json={"location": "swedencentral"},
               headers=headers)
    body = {"properties": {
        "roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/"
                            f"{access.BUILTIN['Role Based Access Control Administrator'].id}",
        "principalId": str(uuid.uuid4()), "principalType": "ServicePrincipal",
        "condition": access.ASSIGNMENT_CONDITION, "conditionVersion": "2.0"}}
    path = f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}"
    created = client.put(f"{path}?api-version=2022-04-01", json=body, headers=headers)
    assert created.status_code == 201 and created.json["properties"]["condition"] == access.ASSIGNMENT_CONDITION
    unversioned = {"properties": {**body["properties"], "conditionVersion": "1.0"}}
    refused = client.put(f"{path[:-36]}{uuid.uuid4()}?api-version=2022-04-01", json=unversioned, headers=headers)
    assert refused.status_code == 400


# --- a 403 names the role and the scope ----------------------------------------------------------------------------

@pytest.mark.parametrize("action,scope,role,where", [
    ("Microsoft.CognitiveServices/locations/models/read", "/subscriptions/s", "ftops Azure subscription operator",
     "subscription"),
    ("Microsoft.Authorization/roleAssignments/write",
     "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a",
     "Role Based Access Control Administrator", "resource_group"),
    ("Microsoft.CognitiveServices/accounts/deployments/write",
     "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a/deployments/d",
     "Contributor", "resource_group"),
])
def test_an_authorization_failure_names_the_missing_role_and_scope(action, scope, role, where):
    message = (f"The client 'x' with object id 'y' does not have authorization to perform action '{action}' over "
               f"scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your "
               "credentials.")
    hint = access.explain_denied(message)
    assert hint is not None and f"'{role}'" in hint and f"at {where} scope" in hint and scope in hint


def test_plan_prints_the_missing_role_on_a_403(ftops, azure_local):
    import json
    import urllib.request

    rule = {"rules": [{"method": "GET", "path": "/models", "status": 403, "code": "AuthorizationFailed",
                       "message": "The client 'x' with object id 'y' does not have authorization to perform action "
                                  "'Microsoft.CognitiveServices/locations/models/read' over scope "
                                  "'/subscriptions/00000000-0000-4000-8000-000000000000' or the scope is invalid.",
                       "times": 50}]}
    urllib.request.urlopen(urllib.request.Request(f"{azure_local.endpoint}/_emulator/faults", method="POST",
                                                  data=json.dumps(rule).encode(),
                                                  headers={"Content-Type": "application/json"}))
    result = ftops("infra", "plan", "--cloud", "azure", "--env", "local")
    assert result.exit_code == 1
    assert "ftops Azure subscription operator" in result.stderr + result.stdout
    assert "subscription scope" in result.stderr + result.stdout


def test_every_scope_of_an_environment_has_an_arm_id():
    ids = access.scope_ids(load_environment("dev"))
    assert {access.scope_kind(v) for v in ids.values()} == set(access.SCOPES)
    assert {c.identity for c in access.CALLS} == {"apply", "pipeline"} and access.calls_for("pipeline")
