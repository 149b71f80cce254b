"""The boundary with the Azure SDKs: transient failures are retried, everything else becomes one CloudError line.

Retried (by `jobs.retry`, the one retry loop, with its defaults): 429 throttling, 5xx, transport errors, and the
409s ARM answers while a resource is still provisioning (e.g. AccountProvisioningStateInvalid), each honouring
`Retry-After` / `retry-after-ms`. A failure names the resource and ARM's error code and message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from jobs import retry
from jobs.clients import credential_error
from jobs.errors import CloudError

T = TypeVar("T")

RETRYABLE_CONFLICTS = {"AccountProvisioningStateInvalid", "DeploymentProvisioningStateInvalid",
                       "StorageAccountOperationInProgress", "AnotherOperationInProgress", "OperationNotAllowed",
                       "ResourceGroupBeingDeleted", "Conflict", "RequestConflict"}
HINTS = {
    "CustomDomainInUse": "set azure.openai.custom_subdomain to a globally unique name in the environment file",
    "StorageAccountAlreadyTaken": "storage account names are global; choose another azure.storage_account",
    "AuthorizationFailed": "the identity lacks permission on this scope; grant it Contributor and "
                           "User Access Administrator on the resource group (or Owner)",
    "InsufficientQuota": "lower the deployment capacity or request quota for the model in this region",
    "DeploymentModelNotSupported": "pick a model and version that `ftops infra plan` lists for the region",
    "FlagMustBeSetForRestore": "a soft-deleted account holds the name; apply restores it, or purge it first",
    "LocationNotAvailableForResourceType": "choose an azure.location where Azure OpenAI is offered",
}


def arm_error(exc: BaseException) -> tuple[str, str]:
    """ARM's (code, message) from an azure.core error; the body's `error` wins over the HTTP reason."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None)
    response = getattr(exc, "response", None)
    if not code and response is not None:
        try:
            body = response.json() or {}
            code, message = body.get("error", {}).get("code"), body.get("error", {}).get("message")
        except Exception:  # noqa: BLE001 - a body that is not JSON leaves the HTTP reason
            pass
    if not code:
        code = str(getattr(response, "status_code", "") or type(exc).__name__)
    if not message:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # azure.core prefixes "(Code) " to its messages; keep ARM's text only.
    return code, message.removeprefix(f"({code}) ").splitlines()[0]


def _retryable(exc: BaseException) -> bool:
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return True
    if not isinstance(exc, HttpResponseError) or exc.response is None:
        return False
    status = exc.status_code or 0
    if status == 429 or status in (500, 502, 503, 504):
        return True
    code = arm_error(exc)[0]
    # A principal created moments ago may not have replicated to ARM yet.
    return (status == 409 and code in RETRYABLE_CONFLICTS) or (status == 400 and code == "PrincipalNotFound")


def _retry_after(exc: BaseException) -> float | None:
    return retry.retry_after_from_headers(getattr(getattr(exc, "response", None), "headers", None))


def call(what: str, fn: Callable[[], T], policy: retry.RetryPolicy = retry.RetryPolicy(),
         on_retry: Callable[[str, float], None] | None = None, *, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run `fn` (one SDK call, LROs waited on inside it); `what` names the action and resource for errors."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError

    def report(_attempt: int, wait: float, exc: BaseException) -> None:
        if on_retry:
            on_retry(f"{what}: {arm_error(exc)[0]}, retrying in {wait:.1f}s", wait)

    try:
        return retry.call(fn, policy, sleep=sleep, on_retry=report, retryable=_retryable, retry_after=_retry_after)
    except ClientAuthenticationError as exc:
        login = credential_error(exc)   # the CLI's one wording for a missing login (jobs.clients)
        raise CloudError(f"{what}: {login.message}", hint=login.hint) from None
    except AzureError as exc:
        code, message = arm_error(exc)
        raise CloudError(f"{what} failed: {code}: {message}", hint=HINTS.get(code)) from None
