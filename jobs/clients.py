"""Cloud clients for an environment. The one place that decides real cloud versus emulator.

`local` (emulated) environments talk to the emulators `ftops local up` started; every other environment
talks to the real clouds with the default credential chains (no keys in code or config).
SDKs are imported lazily: they are heavy and most commands need only one of them.

Credentials go only where they belong: an emulator endpoint (from `ftops local up` or a `FTOPS_*_ENDPOINT`
override) must be a loopback address, and emulated clients carry fixed dummy credentials, never the user's;
a real environment's Azure OpenAI and ARM endpoints must be https on Azure's public-cloud domains.
"""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from jobs.config.environment import Environment
from jobs.errors import CloudError, ConfigError
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


# Azure public cloud only: ftops asks Entra ID for tokens with the public cloud's audiences
# (https://cognitiveservices.azure.com/.default, https://management.azure.com/.default), so sovereign clouds
# (Azure Government, Azure China: other domains and audiences) are refused rather than half supported.
# Domains: Azure OpenAI resources answer on <name>.openai.azure.com (learn.microsoft.com, .NET Aspire
# AzureOpenAISettings.Endpoint, checked 2026-11-29) and, for multi-service accounts, on
# <name>.cognitiveservices.azure.com (the domain of the token audience above; taken from issue 17, not re-checked
# against a Microsoft page in this change); ARM is management.azure.com (the audience ftops requests).
AZURE_OPENAI_DOMAINS = (".openai.azure.com", ".cognitiveservices.azure.com")
ARM_HOST = "management.azure.com"
EMULATOR_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
"""What emulated AWS clients sign with: fixed, so a real key in the user's environment never leaves the host."""


def emulator_endpoint(name: str) -> str:
    """A running emulator's endpoint, refused unless it is a loopback address (emulated clients send test
    credentials and plain HTTP, which may only go to this machine)."""
    url = emulators.endpoint(name)
    if not is_loopback(url):
        variable = f"FTOPS_{name.upper()}_ENDPOINT"
        source = variable if os.environ.get(variable) else emulators.state_file()
        raise CloudError(f"the {name} emulator endpoint {url} is not a loopback address", source=source,
                         hint="emulator endpoints must be http://127.0.0.1:PORT, http://[::1]:PORT or "
                              "http://localhost:PORT")
    return url


def check_azure_url(url: str, domains: tuple[str, ...], what: str, source: Any = None) -> str:
    """`url` if it is https on one of `domains` (a suffix starting with '.' matches subdomains only; others
    match the host exactly); raises otherwise, so a bearer token is never sent elsewhere."""
    parsed = urlparse(url)
    host = (parsed.hostname or "").lower()
    if parsed.scheme != "https" or parsed.username or parsed.password or parsed.port not in (None, 443) or not any(
            host.endswith(d) and host != d[1:] if d.startswith(".") else host == d for d in domains):
        raise ConfigError(f"{what} {url!r} is not https on {' or '.join('*' + d if d.startswith('.') else d for d in domains)}",
                          source=source, hint="ftops sends Entra ID tokens only to Azure's own endpoints (public "
                                              "cloud); re-run `ftops infra apply --cloud azure` to rewrite it")
    return url


def azure_openai_endpoint(env: Environment, account: str) -> str:
    """The data-plane endpoint of the environment's Azure OpenAI account: the emulator's per-account path
    (loopback) locally, the account's own https host on Azure."""
    if env.emulated:
        return f"{emulator_endpoint('azure').rstrip('/')}/accounts/{account}"
    from jobs.config.resolved import resolved_azure, resolved_file

    return check_azure_url(resolved_azure(env).openai_endpoint, AZURE_OPENAI_DOMAINS, "openai_endpoint",
                           resolved_file(env.name, "azure"))


def arm_endpoint(env: Environment) -> str | None:
    """The emulator (loopback) for emulated environments; None means ARM's public-cloud default."""
    return emulator_endpoint("azure") if env.emulated else None


def aws_endpoint(env: Environment) -> str | None:
    return emulator_endpoint("moto") if env.emulated else None


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
        # The emulator accepts any credentials: fixed dummy ones, never the user's keys or profile.
        kwargs.update(EMULATOR_CREDENTIALS)
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
        return emulator_endpoint("azurite")
    return check_azure_url(f"https://{azure.storage_account}.blob.core.windows.net", (".blob.core.windows.net",),
                           "storage account endpoint")


def blob_service(env: Environment) -> BlobServiceClient:
    from azure.storage.blob import BlobServiceClient

    url = blob_account_url(env)
    if env.emulated and is_loopback(url):
        # Azurite's public development key; shared-key auth is off on every real account ftops creates.
        return BlobServiceClient(url, credential={"account_name": emulators.AZURITE_ACCOUNT,
                                                  "account_key": emulators.AZURITE_KEY})
    return BlobServiceClient(url, credential=azure_credential(env))
