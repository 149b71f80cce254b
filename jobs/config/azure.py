"""Azure settings of an environment (the Azure provisioning and the Azure OpenAI provider read these)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from jobs.config.base import Declaration, Int

RFC1918 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
GUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class ModelDeployment(Declaration):
    """A base-model deployment on the environment's OpenAI account (fine-tuned ones come from `ftops deploy`)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
    """The deployment name clients call (2-64 letters, digits, `.`, `_`, `-`)."""

    model: str = Field(min_length=1)
    """The model name as Azure lists it, e.g. `gpt-4.1-mini`."""

    version: str = Field(min_length=1)
    """The model version, e.g. `2025-04-14`."""

    sku: Literal["Standard", "GlobalStandard", "DataZoneStandard"] = "GlobalStandard"
    """The deployment type (Standard is regional; GlobalStandard routes worldwide)."""

    capacity: Int = Field(1, ge=1, le=10_000)
    """Capacity units (thousands of tokens per minute); checked against the region's quota by plan."""


class FineTuningModel(Declaration):
    """A model this environment fine-tunes; checked against the region before anything is created."""

    model: str = Field(min_length=1)
    """The model id from the reference file (e.g. `gpt-4.1-mini-2025-04-14`) or its base name."""

    training_type: Literal["Standard", "GlobalStandard", "Developer"] = "Standard"
    """Where training runs: Standard (in the account's region), GlobalStandard, or Developer (preemptible)."""


class OpenAISettings(Declaration):
    """The Azure OpenAI account: named `<resource group without -rg>-openai`."""

    custom_subdomain: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
    """The globally unique subdomain of the endpoint (`https://<subdomain>.openai.azure.com/`); default: the account name. Change it if apply reports CustomDomainInUse."""

    sku: str = "S0"
    """The account SKU (Azure OpenAI offers S0)."""

    disable_local_auth: bool = True
    """Microsoft Entra ID only, no API keys (must stay true in production)."""

    restrict_outbound_network_access: bool = True
    """Block the account's outbound calls except to `allowed_fqdns` (data exfiltration protection)."""

    allowed_fqdns: list[str] = []
    """Host names the account may call when outbound access is restricted."""

    deployments: list[ModelDeployment] = []
    """Base-model deployments apply creates (e.g. a grader for evaluation)."""

    fine_tuning_models: list[FineTuningModel] = []
    """Models this environment fine-tunes; plan and apply refuse a model the region cannot train."""

    @field_validator("deployments")
    @classmethod
    def check_unique_deployments(cls, deployments: list[ModelDeployment]) -> list[ModelDeployment]:
        names = [d.name for d in deployments]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"deployment names must be unique; {', '.join(duplicates)} appears more than once")
        return deployments


class NetworkSettings(Declaration):
    """Who may reach the OpenAI and storage accounts over the network."""

    public_network_access: Literal["Enabled", "Disabled"] = "Enabled"
    """`Disabled` allows private endpoints only."""

    default_action: Literal["Allow", "Deny"] = "Allow"
    """What the network ACL does with addresses not in `ip_ranges` (`Deny` in production)."""

    ip_ranges: list[str] = []
    """IPv4 addresses or CIDR ranges allowed through the ACL (e.g. the pipeline's egress, the office)."""

    @field_validator("ip_ranges")
    @classmethod
    def check_ip_ranges(cls, ranges: list[str]) -> list[str]:
        for value in ranges:
            try:
                network = ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"{value!r} is not an IPv4 address or CIDR range, e.g. 203.0.113.0/24") from None
            if network.version != 4 or any(network.subnet_of(ipaddress.ip_network(p)) for p in RFC1918):
                raise ValueError(f"{value!r} must be a public IPv4 address or range (Azure IP rules ignore private ones)")
        return ranges

    @property
    def restricted(self) -> bool:
        return self.public_network_access == "Disabled" or self.default_action == "Deny"


class AzureSettings(Declaration):
    enabled: bool = True
    """Whether this environment uses Azure at all."""

    subscription_id: str = Field(pattern=GUID)
    """The Azure subscription id (a GUID)."""

    location: str = Field(pattern=r"^[a-z0-9]+$")
    """The Azure region for the OpenAI account and storage, e.g. `swedencentral` (checked against
    jobs/reference/azure_locations.yaml)."""

    @field_validator("location")
    @classmethod
    def check_location_exists(cls, location: str) -> str:
        from jobs.config.regions import check_azure_location

        return check_azure_location(location)

    # Azure's rule (1-90 of letters, digits, `-_.()`, not ending in `.`): `^[-\w._()]{1,89}[-\w_()]$` with the
    # length as bounds. The same strings; the counted repetition of `\w` (all of Unicode's word characters) made
    # pydantic-core's regex take about 10 ms to build, per model embedding this one, in every process.
    resource_group: str = Field(pattern=r"^[-\w._()]*[-\w_()]$", min_length=2, max_length=90)
    """The resource group ftops manages for this environment."""

    storage_account: str = Field(pattern=r"^[a-z0-9]{3,24}$")
    """The storage account for training data (3-24 lowercase letters and digits, globally unique)."""

    production: bool = False
    """Production guard rails (always on for the environment named `prod`): network restricted, no local auth."""

    storage_sku: Literal["Standard_LRS", "Standard_ZRS", "Standard_GRS", "Standard_RAGRS", "Standard_GZRS"] = "Standard_LRS"
    """Redundancy of the training-data storage account."""

    soft_delete_days: Int = Field(7, ge=1, le=365)
    """Days deleted blobs and containers stay recoverable."""

    pipeline_principal_id: str | None = Field(None, pattern=GUID)
    """Object id of the pipeline's identity (workload identity); it gets data roles on the account and container only."""

    pipeline_principal_type: Literal["ServicePrincipal", "User", "Group"] = "ServicePrincipal"
    """What kind of principal `pipeline_principal_id` is."""

    openai: OpenAISettings = OpenAISettings()
    """The Azure OpenAI account, its deployments and the models this environment fine-tunes."""

    network: NetworkSettings = Field(NetworkSettings(), validate_default=True)
    """Network access to the OpenAI and storage accounts (restricted in production)."""

    @staticmethod
    def _is_production(info: ValidationInfo) -> bool:
        source = (info.context or {}).get("source")
        return bool(info.data.get("production")) or (source is not None and Path(source).stem == "prod")

    @field_validator("openai")
    @classmethod
    def check_production_auth(cls, openai: OpenAISettings, info: ValidationInfo) -> OpenAISettings:
        if cls._is_production(info) and not openai.disable_local_auth:
            raise ValueError("production environments use Microsoft Entra ID only; set openai.disable_local_auth: true")
        return openai

    @field_validator("network")
    @classmethod
    def check_production_network(cls, network: NetworkSettings, info: ValidationInfo) -> NetworkSettings:
        if cls._is_production(info) and not network.restricted:
            raise ValueError("production environments restrict network access; set network.default_action: Deny "
                             "(with ip_ranges) or network.public_network_access: Disabled")
        return network

    @model_validator(mode="after")
    def check_deny_has_a_way_in(self) -> "AzureSettings":
        if self.network.default_action == "Deny" and self.network.public_network_access == "Enabled" \
                and not self.network.ip_ranges:
            raise ValueError("network.default_action Deny with no ip_ranges locks everyone out, the pipeline too; "
                             "add ip_ranges or set public_network_access: Disabled (private endpoints)")
        return self

    @property
    def openai_account_name(self) -> str:
        """The OpenAI account's name: the resource group without its `-rg` suffix, plus `-openai`."""
        return f"{self.resource_group.removesuffix('-rg')}-openai"

    @property
    def openai_subdomain(self) -> str:
        return self.openai.custom_subdomain or self.openai_account_name.lower()
