"""Management clients for an environment: the real ARM endpoint, or the local emulator on loopback."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from jobs.clients import azure_credential, emulator_endpoint, is_loopback
from jobs.config.environment import Environment
from jobs.errors import CloudError

ARM_SCOPE = "https://management.azure.com/.default"


def arm_endpoint(env: Environment) -> str | None:
    """The emulator for emulated environments; None means Azure's public cloud."""
    return emulator_endpoint("azure") if env.emulated else None  # loopback only (jobs.clients)


def _loopback_bearer_policy(credential: Any, endpoint: str):
    """Bearer tokens over plain HTTP, for a loopback emulator only: the real-cloud path keeps HTTPS enforced."""
    from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy

    class LoopbackBearerPolicy(ARMChallengeAuthenticationPolicy):
        def on_request(self, request):
            if not is_loopback(request.http_request.url):
                raise CloudError(f"refusing to send a token over plain HTTP to {request.http_request.url}",
                                 hint="plain HTTP is only allowed for the loopback emulator")
            request.context["enforce_https"] = False
            return super().on_request(request)

    return LoopbackBearerPolicy(credential, ARM_SCOPE)


@dataclass
class AzureClients:
    env: Environment
    endpoint: str | None = None
    credential: Any = None
    _kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_env(cls, env: Environment) -> "AzureClients":
        endpoint = arm_endpoint(env)
        credential = azure_credential(env)
        # One retry mechanism, at our boundary (jobs.retry, through infra.azure.errors), so every retry is visible and honours
        # Retry-After the same way; the SDK's own policy would multiply attempts.
        kwargs: dict[str, Any] = {"retry_total": 0, "polling_interval": 5}
        if endpoint:
            kwargs.update(base_url=endpoint, polling_interval=0.1)
            if endpoint.startswith("http://"):
                if not is_loopback(endpoint):
                    raise CloudError(f"the Azure endpoint {endpoint} is plain HTTP and not loopback",
                                     hint="only the local emulator may be reached without TLS")
                kwargs["authentication_policy"] = _loopback_bearer_policy(credential, endpoint)
        return cls(env, endpoint, credential, kwargs)

    @property
    def subscription_id(self) -> str:
        return self.env.require_azure().subscription_id

    @cached_property
    def resources(self):
        from azure.mgmt.resource.resources import ResourceManagementClient

        return ResourceManagementClient(self.credential, self.subscription_id, **self._kwargs)

    @cached_property
    def cognitive(self):
        from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

        return CognitiveServicesManagementClient(self.credential, self.subscription_id, **self._kwargs)

    @cached_property
    def storage(self):
        from azure.mgmt.storage import StorageManagementClient

        return StorageManagementClient(self.credential, self.subscription_id, **self._kwargs)

    @cached_property
    def authorization(self):
        from azure.mgmt.authorization import AuthorizationManagementClient

        return AuthorizationManagementClient(self.credential, self.subscription_id, **self._kwargs)
