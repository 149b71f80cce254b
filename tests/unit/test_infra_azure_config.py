"""The `azure:` block of an environment: production guard rails at load, and what apply would create."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.azure.desired import ROLE_BLOB_DATA_CONTRIBUTOR, ROLE_OPENAI_CONTRIBUTOR, desired_resources
from jobs.config.environment import Environment, load_environment
from jobs.config.resolved import derive_azure
from jobs.errors import ConfigError
from jobs.yamlio import load_model

BASE = """name: {name}
owner: team
azure:
  subscription_id: 11111111-1111-4111-8111-111111111111
  location: swedencentral
  resource_group: ftops-{name}-rg
  storage_account: ftops{name}data
"""


def _load(tmp_path: Path, name: str, extra: str = "") -> Environment:
    path = tmp_path / f"{name}.yaml"
    path.write_text(BASE.format(name=name) + extra)
    return load_model(path, Environment)


def test_prod_without_network_restriction_is_rejected_at_load(tmp_path):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "prod")
    assert str(err.value).startswith(f"{tmp_path / 'prod.yaml'}:3: azure.network: production environments "
                                     "restrict network access")


def test_prod_with_local_auth_is_rejected_at_load(tmp_path):
    extra = "  openai:\n    disable_local_auth: false\n  network: {public_network_access: Disabled}\n"
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "prod", extra)
    assert str(err.value).startswith(f"{tmp_path / 'prod.yaml'}:8: azure.openai: production environments use "
                                     "Microsoft Entra ID only")


def test_production_flag_applies_the_same_rules_to_any_name(tmp_path):
    with pytest.raises(ConfigError, match="azure.network: production environments restrict network access"):
        _load(tmp_path, "live", "  production: true\n")
    assert _load(tmp_path, "live", "  production: true\n  network: {public_network_access: Disabled}\n")


@pytest.mark.parametrize("network, message", [
    ("{default_action: Deny}", "locks everyone out"),
    ("{default_action: Deny, ip_ranges: [10.1.0.0/16]}", "must be a public IPv4 address"),
    ("{default_action: Deny, ip_ranges: [not-an-ip]}", "is not an IPv4 address or CIDR range"),
])
def test_network_rules_are_checked(tmp_path, network, message):
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, "dev", f"  network: {network}\n")


def test_shipped_prod_is_restricted_and_keyless():
    prod = load_environment("prod").azure
    assert prod.network.restricted and prod.openai.disable_local_auth


def test_desired_state_is_secure_and_ordered():
    env = load_environment("local")
    resources = desired_resources(env)
    kinds = [r.kind for r in resources]
    assert kinds[:5] == ["resource_group", "storage_account", "blob_service", "container", "openai_account"]
    ids = [r.id.lower() for r in resources]
    for res in resources:  # every parent is provisioned before its children
        if res.parent:
            assert ids.index(res.parent.lower()) < ids.index(res.id.lower())
    storage = next(r for r in resources if r.kind == "storage_account").body["properties"]
    assert storage["supportsHttpsTrafficOnly"] and storage["minimumTlsVersion"] == "TLS1_2"
    assert storage["allowBlobPublicAccess"] is False and storage["allowSharedKeyAccess"] is False
    soft = next(r for r in resources if r.kind == "blob_service").body["properties"]
    assert soft["deleteRetentionPolicy"]["enabled"] and soft["containerDeleteRetentionPolicy"]["enabled"]
    account = next(r for r in resources if r.kind == "openai_account")
    assert account.body["kind"] == "OpenAI" and account.body["identity"] == {"type": "SystemAssigned"}
    assert account.body["properties"]["disableLocalAuth"] is True
    assert account.body["tags"] == {"cost-center": "ml-platform", "environment": "local", "managed-by": "ftops",
                                    "owner": "platform-team"}


def test_pipeline_roles_stay_off_the_subscription_scope():
    env = load_environment("local")
    assignments = [r for r in desired_resources(env) if r.kind == "role_assignment"]
    rg = f"/subscriptions/{env.azure.subscription_id}/resourcegroups/{env.azure.resource_group}/".lower()
    roles = {r.body["properties"]["roleDefinitionId"].rsplit("/", 1)[1]: r.extra["scope"] for r in assignments}
    assert roles[ROLE_OPENAI_CONTRIBUTOR].endswith("/accounts/ftops-local-openai")
    assert roles[ROLE_BLOB_DATA_CONTRIBUTOR].endswith("/containers/training-data")
    assert all(scope.lower().startswith(rg) for scope in roles.values())
    # Stable names: a rerun PUTs the same assignment rather than a duplicate.
    assert [r.id for r in assignments] == [r.id for r in desired_resources(env) if r.kind == "role_assignment"]


def test_apply_names_match_what_rendering_assumes():
    env = load_environment("local")
    derived = derive_azure(env)
    by_kind = {r.kind: r for r in desired_resources(env)}
    assert by_kind["openai_account"].id == derived.openai_account_id
    assert by_kind["storage_account"].id == derived.storage_account_id
    subdomain = by_kind["openai_account"].body["properties"]["customSubDomainName"]
    assert derived.openai_endpoint == f"https://{subdomain}.openai.azure.com/"


def test_resource_group_rule_is_azures_pattern_with_length_bounds():
    """The resource group field accepts exactly what `^[-\\w._()]{1,89}[-\\w_()]$` accepts (Azure's rule); it is
    written with length bounds only because that pattern is slow to build."""
    from pydantic import TypeAdapter, ValidationError
    from pydantic_core import SchemaValidator, core_schema

    from jobs.config.azure import AzureSettings

    azures = SchemaValidator(core_schema.str_schema(pattern=r"^[-\w._()]{1,89}[-\w_()]$"))
    field = TypeAdapter(AzureSettings.model_fields["resource_group"].rebuild_annotation())
    samples = ["", "a", ".", "a.", "ab", "a.b", "rg-1", "(rg)_x", "ftops-local-rg", "a\n", "a b", "a/b", "é1",
               "名前", "x" * 89, "x" * 90, "x" * 91, "x" * 89 + ".", "." * 90, "-" * 2, "a" * 90 + "\n", "ab\u200b"]

    def accepts(validate, value: str) -> bool:
        try:
            validate(value)
        except ValidationError:
            return False
        return True

    for value in samples:
        assert accepts(field.validate_python, value) == accepts(azures.validate_python, value), repr(value)
