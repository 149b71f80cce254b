"""Cloud clients for an environment. The one place that decides real cloud versus emulator.

`local` (emulated) environments talk to the emulators `ftops local up` started; every other environment
talks to the real clouds with the default credential chains (no keys in code or config).
SDKs are imported lazily: they are heavy and most commands need only one of them.
"""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from jobs.config.environment import Environment
from jobs.local import emulators

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.storage.blob import BlobServiceClient


def is_loopback(url: str) -> bool:
    """Plain HTTP and test credentials are allowed only for loopback endpoints (the emulators)."""
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def aws_endpoint(env: Environment) -> str | None:
    return emulators.endpoint("moto") if env.emulated else None


def aws_client(env: Environment, service: str, **config: Any):
    """A boto3 client for `service` in the environment's account and region (adaptive retries)."""
    import boto3
    from botocore.config import Config

    aws = env.require_aws()
    kwargs: dict[str, Any] = {"region_name": aws.region,
                              "config": Config(retries={"mode": "adaptive", "max_attempts": 8}, **config)}
    endpoint = aws_endpoint(env)
    if endpoint:
        kwargs["endpoint_url"] = endpoint
        # The emulator accepts any credentials; never pick up a real profile by accident.
        kwargs["aws_access_key_id"] = os.environ.get("AWS_ACCESS_KEY_ID", "testing")
        kwargs["aws_secret_access_key"] = os.environ.get("AWS_SECRET_ACCESS_KEY", "testing")
    return boto3.client(service, **kwargs)


class StaticTestCredential:
    """A TokenCredential for the local emulators only: they accept any bearer token."""

    def get_token(self, *scopes: str, **kwargs: Any):
        from azure.core.credentials import AccessToken

        return AccessToken("emulator-token", 4_102_444_800)


def azure_credential(env: Environment) -> TokenCredential:
    if env.emulated:
        return StaticTestCredential()
    from azure.identity import DefaultAzureCredential

    # Workload identity / OIDC in pipelines, the Azure CLI login on a laptop.
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


def blob_account_url(env: Environment) -> str:
    azure = env.require_azure()
    if env.emulated:
        return emulators.endpoint("azurite")
    return f"https://{azure.storage_account}.blob.core.windows.net"


def blob_service(env: Environment) -> BlobServiceClient:
    from azure.storage.blob import BlobServiceClient

    url = blob_account_url(env)
    if env.emulated and is_loopback(url):
        # Azurite's public development key; shared-key auth is off on every real account ftops creates.
        return BlobServiceClient(url, credential={"account_name": emulators.AZURITE_ACCOUNT,
                                                  "account_key": emulators.AZURITE_KEY})
    return BlobServiceClient(url, credential=azure_credential(env))
