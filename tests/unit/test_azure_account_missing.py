"""The Azure OpenAI client's one line for an account that does not exist: on Azure its host does not resolve
(simulated at the transport: no DNS here), on the emulator a marked 421; anything else passes through unchanged."""

from __future__ import annotations

import socket

import httpx2
import openai
import pytest

from jobs import clients
from jobs.config.environment import load_environment
from jobs.local.azure_emulator import NO_SUCH_ACCOUNT_HEADER


def _resolver_error(code: int):
    def handler(request):
        try:
            raise socket.gaierror(code, "resolver says no")
        except socket.gaierror as exc:  # httpx wraps the resolver's error the same way
            raise httpx2.ConnectError(str(exc), request=request) from exc
    return handler


def _client(env, handler, endpoint: str):
    http = clients.azure_openai_http_client(env, "ftops-dev-openai", transport=httpx2.MockTransport(handler))
    return openai.AzureOpenAI(azure_endpoint=endpoint, api_version="2025-04-01-preview", api_key="unused",
                              max_retries=0, http_client=http)


def test_a_host_that_does_not_resolve_names_the_account_environment_and_fix():
    dev = load_environment("dev")
    api = _client(dev, _resolver_error(socket.EAI_NONAME), "https://ftops-dev-openai.openai.azure.com")
    with pytest.raises(clients.AccountMissingError) as caught:
        api.fine_tuning.jobs.list()
    line = str(caught.value)
    assert "Azure OpenAI account ftops-dev-openai of environment dev does not exist" in line
    assert "ftops-dev-openai.openai.azure.com does not resolve" in line
    assert "`ftops infra apply --cloud azure --env dev`" in line and "\n" not in line


def test_a_resolver_that_cannot_be_asked_is_a_connection_error_not_a_missing_account():
    dev = load_environment("dev")
    api = _client(dev, _resolver_error(socket.EAI_AGAIN), "https://ftops-dev-openai.openai.azure.com")
    with pytest.raises(openai.APIConnectionError):
        api.fine_tuning.jobs.list()


def test_the_emulators_refusal_is_the_same_line_and_other_answers_pass_through():
    local = load_environment("local")
    refusal = {"error": {"code": "ftopsEmulatorNoSuchAccount", "message": "no such account"}}

    def emulator(request):
        if request.url.path.endswith("/files"):
            return httpx2.Response(421, json=refusal, headers={NO_SUCH_ACCOUNT_HEADER: "ftops-dev-openai"})
        return httpx2.Response(404, json={"error": {"code": "notFound", "message": "no such job"}})

    api = _client(local, emulator, "http://127.0.0.1:9/accounts/ftops-dev-openai")
    with pytest.raises(clients.AccountMissingError, match="of environment local does not exist"):
        api.files.list()
    with pytest.raises(openai.NotFoundError):  # a job that does not exist stays the provider's 404
        api.fine_tuning.jobs.retrieve("ftjob-1")


def test_the_marker_is_believed_only_from_a_loopback_endpoint():
    dev = load_environment("dev")
    marked = httpx2.Response(421, json={"error": {"code": "x", "message": "y"}},
                             headers={NO_SUCH_ACCOUNT_HEADER: "ftops-dev-openai"})
    api = _client(dev, lambda request: marked, "https://ftops-dev-openai.openai.azure.com")
    with pytest.raises(openai.APIStatusError) as caught:
        api.files.list()
    assert caught.value.status_code == 421
