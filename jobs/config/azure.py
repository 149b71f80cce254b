"""Azure settings of an environment (the Azure provisioning and the Azure OpenAI provider read these)."""

from __future__ import annotations

from pydantic import Field

from jobs.config.base import Declaration


class AzureSettings(Declaration):
    enabled: bool = True
    """Whether this environment uses Azure at all."""

    subscription_id: str = Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    """The Azure subscription id (a GUID)."""

    location: str = Field(pattern=r"^[a-z0-9]+$")
    """The Azure region for the OpenAI account and storage, e.g. `swedencentral`."""

    resource_group: str = Field(pattern=r"^[-\w._()]{1,89}[-\w_()]$")
    """The resource group ftops manages for this environment."""

    storage_account: str = Field(pattern=r"^[a-z0-9]{3,24}$")
    """The storage account for training data (3-24 lowercase letters and digits, globally unique)."""
