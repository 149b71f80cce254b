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
import logging
import os
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from jobs.config.environment import Environment, environment_file
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
    """The data-plane endpoint of the environment's Azure OpenAI account: the account's own https host on Azure
    (`https://<custom subdomain>.openai.azure.com/`, as ARM reports it); locally the emulator's stand-in for that
    host, `/accounts/<custom subdomain>` on loopback, so that the emulator finds the account the way Azure's DNS
    does (by its globally unique subdomain, not by its name, which other subscriptions may repeat). An endpoint
    that is not an account host of its own (a regional one: no subdomain) leaves the account's name."""
    from jobs.config.resolved import resolved_azure, resolved_file

    if env.emulated:
        host = (urlparse(resolved_azure(env).openai_endpoint).hostname or "").lower()
        label, _, domain = host.partition(".")
        own_host = bool(label) and f".{domain}" in AZURE_OPENAI_DOMAINS
        return f"{emulator_endpoint('azure').rstrip('/')}/accounts/{label if own_host else account}"

    return check_azure_url(resolved_azure(env).openai_endpoint, AZURE_OPENAI_DOMAINS, "openai_endpoint",
                           resolved_file(env.name, "azure"))


class AccountMissingError(CloudError):
    """The environment's Azure OpenAI account does not exist: its data plane has no host (Azure) or the emulator
    refused the account (local). Not transient: retrying cannot create it."""


def azure_account_missing(env: Environment, account: str, why: str) -> AccountMissingError:
    """One line naming the account, the environment and the fix."""
    return AccountMissingError(
        f"the Azure OpenAI account {account} of environment {env.name} does not exist ({why})",
        hint=f"provision it with `ftops infra apply --cloud azure --env {env.name}`; if it exists under another "
             f"name, correct the azure section of {environment_file(env.name).name}")


def _name_not_resolved(exc: BaseException) -> bool:
    """Whether a connection failed because the host name has no address (NXDOMAIN: EAI_NONAME, or EAI_NODATA
    where the platform has it), found anywhere in the exception's causes. A resolver that could not be asked
    (EAI_AGAIN: offline, DNS down) is not this: that is a connection problem, not a missing account."""
    import socket

    codes = {getattr(socket, name) for name in ("EAI_NONAME", "EAI_NODATA") if hasattr(socket, name)}
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, socket.gaierror) and exc.errno in codes:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def azure_openai_http_client(env: Environment, account: str, **options: Any):
    """The HTTP client the openai SDK uses for the account's data plane (the SDK's own defaults), which turns
    "this account does not exist" into `AccountMissingError` at the one place every data-plane call passes:

    - on Azure, the account's host does not resolve (an account never created, or deleted, has no
      `<subdomain>.openai.azure.com`): a connection error that would otherwise be retried like an outage;
    - on the emulator (loopback only), its 421 refusal marked with `NO_SUCH_ACCOUNT_HEADER`
      (jobs.local.azure_emulator.openai.refuse_unknown_account says why it cannot fail the same way).

    The error is not an openai or httpx error, so the SDK passes it through unwrapped and callers that read a
    status code (404 as "no such job") or retry transient errors leave it alone."""
    from openai import DefaultHttpxClient

    from jobs.local.azure_emulator import NO_SUCH_ACCOUNT_HEADER

    class AccountCheckingClient(DefaultHttpxClient):
        def send(self, request, **kwargs):
            try:
                response = super().send(request, **kwargs)
            except Exception as exc:
                if _name_not_resolved(exc):
                    host = getattr(getattr(request, "url", None), "host", None) or "the endpoint's host"
                    raise azure_account_missing(env, account, f"{host} does not resolve") from None
                raise
            if response.status_code == 421 and NO_SUCH_ACCOUNT_HEADER in response.headers and \
                    is_loopback(str(request.url)):
                response.close()
                raise azure_account_missing(env, account, "the Azure emulator's ARM state holds no such account")
            return response

    return AccountCheckingClient(**options)  # options: the httpx client's own (tests pass a transport)


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
    else:
        _CREDENTIALS_ASKED_FOR.setdefault(("aws", env.name), env)
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

    _CREDENTIALS_ASKED_FOR.setdefault(("azure", env.name), env)
    # DefaultAzureCredential logs every credential it tried (a dozen lines) at WARNING before it raises; the
    # exception says the same and the CLI prints it as one line (credential_error). An explicit level stays.
    identity_log = logging.getLogger("azure.identity")
    if identity_log.level == logging.NOTSET:
        identity_log.setLevel(logging.ERROR)
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
    return BlobServiceClient(url, credential=_TokenFetchedFirst(azure_credential(env), STORAGE_SCOPE))


STORAGE_SCOPE = "https://storage.azure.com/.default"


class _TokenFetchedFirst:
    """A credential that fetches its first token when it is built, and hands that token to the client.

    The storage SDK's retry policy retries every AzureError, a failed token request included, with its backoff:
    a command without an Azure login took about 80 s to say so. Fetched here, the error comes at once; kept,
    the token costs no second `az` call for the client's first request.
    """

    def __init__(self, credential: TokenCredential, scope: str) -> None:
        self._credential, self._scope = credential, scope
        self._token = credential.get_token(scope)

    def get_token(self, *scopes: str, **kwargs: Any):
        fresh = self._token.expires_on - time.time() > 300
        if scopes == (self._scope,) and fresh and not kwargs.get("claims"):
            return self._token
        return self._credential.get_token(*scopes, **kwargs)


# --- credential errors ------------------------------------------------------------------------------------
# The CLI root (jobs.cli.main.user_error) hands every uncaught exception here, so each command gets the same
# one line for a missing or expired login without wrapping each SDK call. Classes are matched by name and
# module through the MRO, not by isinstance: importing botocore or azure just to catch their errors would cost
# every command's start-up, and a command that never loaded an SDK cannot raise its errors.
AWS_CREDENTIAL_ERRORS = frozenset({
    "NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError", "NoAuthTokenError",
    "TokenRetrievalError", "SSOError", "LoginError", "UnknownCredentialError", "ProfileNotFound"})
"""botocore.exceptions classes (and their subclasses: SSOTokenLoadError, UnauthorizedSSOTokenError, the
Login* errors) raised while finding or refreshing credentials, before any request is sent."""
AWS_CREDENTIAL_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId",
                                  "UnrecognizedClientException", "InvalidToken"})
"""ClientError codes for keys or a session token AWS does not know or that expired (STS, S3, SageMaker)."""
AWS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException"})
AZURE_CREDENTIAL_ERRORS = frozenset({"ClientAuthenticationError"})
"""azure.core's error for no usable token or a 401 (azure.identity's CredentialUnavailableError derives
from it)."""
AZURE_OPENAI_CREDENTIAL_ERRORS = frozenset({"AuthenticationError"})
"""openai's error for a 401 from the Azure OpenAI data plane: a token it does not take (another tenant's, say)."""
AZURE_OPENAI_DENIED_ERRORS = frozenset({"PermissionDeniedError"})
"""openai's error for a 403: the identity lacks a data role on the account."""

AWS_LOGIN_HINT = ("log in with `aws sso login` or set AWS_PROFILE to a profile for {accounts}; "
                  "in the pipeline, check the role the workflow assumes through OIDC")
AZURE_LOGIN_HINT = ("`az login` on a laptop, for {subscriptions}; "
                    "workload identity (OIDC) or a managed identity in the pipeline")
AZURE_DENIED_HINT = ("use an identity with the data roles ftops grants on {subscriptions}: Cognitive Services OpenAI "
                     "Contributor on the account and Storage Blob Data Contributor on the container "
                     "(`ftops infra apply --cloud azure` assigns both to azure.pipeline_principal_id)")

_CREDENTIALS_ASKED_FOR: dict[tuple[str, str], Environment] = {}
"""(cloud, environment name) -> environment, for every real cloud client this process built: clients are
built per environment and their errors come later, so this is how a credential error names the environment."""


def _sdk_classes(exc: BaseException, package: str) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__ if (cls.__module__ or "").split(".")[0] == package}


def _aws_error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)   # botocore's ClientError
    if "ClientError" not in _sdk_classes(exc, "botocore") or not isinstance(response, dict):
        return None
    return (response.get("Error") or {}).get("Code")


def _azure_denied(exc: BaseException) -> bool:
    """A 403 from Azure: openai's PermissionDeniedError, or azure.core's HttpResponseError (ARM, blob storage),
    which carries no class of its own for it."""
    if _sdk_classes(exc, "openai") & AZURE_OPENAI_DENIED_ERRORS:
        return True
    return "HttpResponseError" in _sdk_classes(exc, "azure") and getattr(exc, "status_code", None) == 403


def credential_error(exc: BaseException, env: Environment | None = None) -> CloudError | None:
    """One line for a cloud SDK error that a login fixes, or a denied permission: the cloud, the environment
    (`env`, else those whose clients this process built) and the fix. None for anything else."""
    code = _aws_error_code(exc)
    if _sdk_classes(exc, "botocore") & AWS_CREDENTIAL_ERRORS or code in AWS_CREDENTIAL_CODES:
        cloud, what = "aws", "no usable AWS credentials"
    elif code in AWS_DENIED_CODES:
        cloud, what = "aws", "AWS denied the request"
    elif _sdk_classes(exc, "azure") & AZURE_CREDENTIAL_ERRORS or _sdk_classes(exc, "openai") & \
            AZURE_OPENAI_CREDENTIAL_ERRORS:
        cloud, what = "azure", "no usable Azure credential"
    elif _azure_denied(exc):
        cloud, what = "azure", "Azure denied the request"
    else:
        return None
    envs = [env] if env is not None else [e for (c, _), e in _CREDENTIALS_ASKED_FOR.items() if c == cloud]
    names = ", ".join(e.name for e in envs)
    where = f" for environment{'s' if len(envs) > 1 else ''} {names}" if envs else ""
    detail = (str(exc).strip().splitlines() or [""])[0] or type(exc).__name__
    # A ClientError's text names its code and operation; an SDK exception's class says what failed.
    message = f"{what}{where}: {detail}" if code else f"{what}{where}: {type(exc).__name__}: {detail}"
    if cloud == "azure":
        subscriptions = ", ".join(f"subscription {e.azure.subscription_id}" for e in envs if e.azure)
        subscriptions = subscriptions or "the environment's subscription"
        if what.startswith("no usable"):
            return CloudError(message, hint=AZURE_LOGIN_HINT.format(subscriptions=subscriptions))
        from jobs.access.azure import explain_denied  # ARM names the action and scope: the role that carries it

        checks = " or ".join(f"`ftops preflight --env {e.name}`" for e in envs) or "`ftops preflight --env ENV`"
        hint = explain_denied(str(exc), identity=None) or AZURE_DENIED_HINT.format(subscriptions=subscriptions)
        return CloudError(message, hint=f"{hint}; {checks} checks what the pipeline needs")
    accounts = ", ".join(f"account {e.aws.account}" for e in envs if e.aws) or "the environment's account"
    if code in AWS_DENIED_CODES:
        checks = " or ".join(f"`ftops preflight --env {e.name}`" for e in envs) or \
            "`ftops preflight --env ENV`"
        return CloudError(message, hint=f"use credentials for {accounts} that hold this permission; {checks} "
                                        "checks what the pipeline needs")
    return CloudError(message, hint=AWS_LOGIN_HINT.format(accounts=accounts))
