"""What a user sees when the cloud login, a lookup or the local state is broken: one line naming what and how
to fix it, exit 1, never a traceback. No network: AWS fails in botocore's credential chain before any request
(no credentials at all), Azure in DefaultAzureCredential limited to its environment-variable credential, and
SageMaker's answers come from botocore's Stubber."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from botocore import exceptions as boto
from botocore.stub import Stubber

from jobs import clients
from jobs.config.environment import load_environment
from jobs.providers import get

ROOT = Path(__file__).resolve().parents[2]
AWS_COMMANDS = [
    ("jobs", "list", "--env", "dev"),
    ("jobs", "status", "X", "--env", "dev"),
    ("jobs", "cancel", "X", "--env", "dev"),
    ("jobs", "events", "X", "--env", "dev"),
    ("models", "list", "--env", "dev"),
    ("models", "show", "helpdesk-qwen-lora", "--env", "dev"),
    ("deploy", "helpdesk-qwen-lora", "--env", "dev"),
    ("undeploy", "helpdesk-qwen-lora", "--env", "dev"),
    ("promote", "helpdesk-qwen-lora"),
]


def _without_cloud_logins(environ: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """`environ` with no AWS or Azure credential source a test machine might have."""
    env = {k: v for k, v in environ.items() if not k.startswith(("AWS_", "AZURE_", "IDENTITY_", "MSI_"))}
    return {**env, "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"), "AWS_EC2_METADATA_DISABLED": "true",
            # DefaultAzureCredential with only its environment credential: no az CLI, IMDS probe or token cache.
            "AZURE_TOKEN_CREDENTIALS": "EnvironmentCredential"}


@pytest.fixture
def no_cloud_logins(monkeypatch, tmp_path):
    import boto3

    wanted = _without_cloud_logins(dict(os.environ), tmp_path)
    for name in set(os.environ) - set(wanted):
        monkeypatch.delenv(name)
    for name, value in wanted.items():
        monkeypatch.setenv(name, value)
    # boto3's default session keeps the credentials it first resolved (an earlier test's dummy keys): a fresh
    # one resolves them again from this environment, as a new `ftops` process does.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


@pytest.fixture(autouse=True)
def fresh_clients(monkeypatch):
    """Clients are cached per process: a test builds its own and names only its own environments."""
    from jobs.providers import azure_openai, sagemaker

    monkeypatch.setattr(clients, "_CREDENTIALS_ASKED_FOR", {})
    caches = [sagemaker._client, azure_openai._client, azure_openai._mgmt]
    for cache in caches:
        cache.cache_clear()
    yield
    for cache in caches:
        cache.cache_clear()


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


# --- a missing, expired or refused login ------------------------------------------------------------------

@pytest.mark.parametrize("command", AWS_COMMANDS, ids=" ".join)
def test_no_aws_credentials_is_one_line_naming_the_environment_and_the_login(ftops, no_cloud_logins, command):
    result = ftops(*command)
    line = _one_line(result.stderr)
    assert result.exit_code == 1
    if command[0] == "models" and "Azure" in line:  # they read both clouds' records; Azure's store fails first
        assert "no usable Azure credential for environment dev" in line and "az login" in line, line
        return
    assert "no usable AWS credentials for environment" in line and "NoCredentialsError" in line, line
    assert "aws sso login" in line and "AWS_PROFILE" in line and "OIDC" in line, line
    assert "no SageMaker training job" not in line


def _raising(exc: BaseException):
    def call(*args, **kwargs):
        raise exc
    return call


def _azure_errors() -> list:
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import CredentialUnavailableError

    return [ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token from the included "
                                      "credentials.\nAttempted credentials:\n\tEnvironmentCredential: ..."),
            CredentialUnavailableError("EnvironmentCredential authentication unavailable.")]


@pytest.mark.parametrize("error", [
    boto.NoCredentialsError(),
    boto.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
    boto.CredentialRetrievalError(provider="custom-process", error_msg="process exited 1"),
    boto.TokenRetrievalError(provider="sso", error_msg="the SSO session has expired"),
    boto.SSOTokenLoadError(error_msg="no cached token"),
    boto.UnauthorizedSSOTokenError(),
    boto.ProfileNotFound(profile="ml-dev"),
    boto.ClientError({"Error": {"Code": "ExpiredToken", "Message": "The security token included in the request "
                                                                     "is expired"}}, "ListTrainingJobs"),
    boto.ClientError({"Error": {"Code": "UnrecognizedClientException",
                                "Message": "The security token included in the request is invalid."}},
                     "ListTrainingJobs"),
], ids=lambda e: type(e).__name__ if not isinstance(e, boto.ClientError) else e.response["Error"]["Code"])
def test_every_aws_credential_error_is_mapped(ftops, monkeypatch, error):
    monkeypatch.setattr("jobs.providers.sagemaker.SageMaker.list", _raising(error))
    result = ftops("jobs", "list", "--env", "dev")
    line = _one_line(result.stderr)
    assert result.exit_code == 1
    assert line.startswith("error: no usable AWS credentials") and "aws sso login" in line, line


@pytest.mark.parametrize("index", [0, 1], ids=["ClientAuthenticationError", "CredentialUnavailableError"])
def test_every_azure_credential_error_is_mapped(ftops, monkeypatch, index):
    monkeypatch.setattr("jobs.providers.azure_openai.AzureOpenAI.describe", _raising(_azure_errors()[index]))
    result = ftops("jobs", "status", "ftjob-abc", "--env", "dev")
    line = _one_line(result.stderr)
    assert result.exit_code == 1
    assert line.startswith("error: no usable Azure credential") and "az login" in line, line
    assert "managed identity" in line and "Attempted credentials" not in line, line


def _openai_error(cls_name: str, status: int):
    import httpx2 as httpx  # openai 3.x is built on httpx2
    import openai

    request = httpx.Request("GET", "https://ftops-dev.openai.azure.com/openai/fine_tuning/jobs/ftjob-abc")
    body = {"error": {"code": "PermissionDenied", "message": "The principal lacks the required data action"}}
    return getattr(openai, cls_name)(f"Error code: {status} - {body}", response=httpx.Response(status, request=request),
                                     body=body)


def _azure_job_status_line(ftops, monkeypatch, error: BaseException) -> str:
    """The one line `ftops jobs status` prints when the Azure OpenAI lookup raises `error` (exit 1)."""
    monkeypatch.setattr("jobs.providers.azure_openai.AzureOpenAI.describe", _raising(error))
    result = ftops("jobs", "status", "ftjob-abc", "--env", "dev")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    return _one_line(result.stderr)


def test_a_token_azure_openai_refuses_is_a_login_problem(ftops, monkeypatch):
    """A 401 from the data plane (a token of another tenant, say): the same line and fix as no token at all."""
    line = _azure_job_status_line(ftops, monkeypatch, _openai_error("AuthenticationError", 401))
    assert line.startswith("error: no usable Azure credential: AuthenticationError: Error code: 401"), line
    assert "az login" in line, line


def test_a_403_from_azure_names_the_data_roles(ftops, monkeypatch):
    line = _azure_job_status_line(ftops, monkeypatch, _openai_error("PermissionDeniedError", 403))
    assert line.startswith("error: Azure denied the request: PermissionDeniedError: Error code: 403"), line
    assert "Cognitive Services OpenAI Contributor" in line and "Storage Blob Data Contributor" in line, line
    assert "ftops preflight --env ENV" in line and "az login" not in line, line


def test_an_arm_authorization_failure_names_the_role_and_scope(ftops, monkeypatch):
    """ARM's 403 names the action and scope; the hint is the role ftops' plan grants for it there."""
    from azure.core.exceptions import HttpResponseError

    account = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/ml-dev/providers/"
               "Microsoft.CognitiveServices/accounts/ftops-dev")
    denied = HttpResponseError(message=(
        "(AuthorizationFailed) The client 'dev@example.com' with object id '1' does not have authorization to "
        f"perform action 'Microsoft.CognitiveServices/accounts/deployments/write' over scope '{account}/"
        "deployments/helpdesk' or the scope is invalid."))
    denied.status_code = 403
    line = _azure_job_status_line(ftops, monkeypatch, denied)
    assert line.startswith("error: Azure denied the request: HttpResponseError: (AuthorizationFailed)"), line
    assert "grant " in line and f"({account}/deployments/helpdesk)" in line, line

    server_error = HttpResponseError(message="(InternalServerError) try again")
    server_error.status_code = 500
    monkeypatch.setattr("jobs.providers.azure_openai.AzureOpenAI.describe", _raising(server_error))
    with pytest.raises(HttpResponseError):  # not a permission: its traceback is the report
        ftops("jobs", "status", "ftjob-abc", "--env", "dev")


@pytest.mark.parametrize(("cloud", "error", "login"), [
    ("aws", "no usable AWS credentials for environment dev: NoCredentialsError", "aws sso login"),
    ("azure", "no usable Azure credential for environment dev: ClientAuthenticationError", "az login"),
])
def test_data_upload_uses_the_same_wording(ftops, no_cloud_logins, tmp_path, monkeypatch, cloud, error, login):
    """On Azure the storage SDK retried a failed token request with its backoff (about 80 s) and the line was its
    own; the token is now fetched first, so the error comes at once, before any request."""
    from azure.storage.blob import ContainerClient

    from tests.fixtures.rendered import write_dataset

    monkeypatch.setattr(ContainerClient, "exists", _raising(AssertionError("a request was sent without a token")))
    write_dataset(tmp_path / "data")
    result = ftops("data", "upload", tmp_path / "data", "--env", "dev", "--cloud", cloud, "--json")
    line = _one_line(result.stderr)
    assert result.exit_code == 1
    assert line.startswith(f"error: {ROOT / 'environments' / 'dev.yaml'}: {cloud} upload failed: {error}"), line
    assert login in line, line


def test_a_fetched_token_serves_the_clients_first_request():
    from azure.core.credentials import AccessToken

    class Counting:
        calls = 0

        def get_token(self, *scopes, **kwargs):
            self.calls += 1
            return AccessToken(f"token-{self.calls}", int(__import__("time").time()) + 3600)

    inner = Counting()
    kept = clients._TokenFetchedFirst(inner, clients.STORAGE_SCOPE)
    assert inner.calls == 1
    assert kept.get_token(clients.STORAGE_SCOPE).token == "token-1" and inner.calls == 1
    assert kept.get_token(clients.STORAGE_SCOPE, claims="{}").token == "token-2"  # a claims challenge asks again
    assert kept.get_token("https://cognitiveservices.azure.com/.default").token == "token-3"


@pytest.mark.parametrize(("provider", "error", "login"), [
    ("sagemaker", "no usable AWS credentials for environment dev", "aws sso login"),
    ("azure-openai", "no usable Azure credential for environment dev", "az login"),
])
def test_plan_and_apply_say_what_fixes_a_missing_login(no_cloud_logins, tmp_path, provider, error, login):
    """They catch cloud errors themselves (one line per provider, one row per job): a missing login there
    gets the same wording and fix, not "rerun once the cloud answers"."""
    from jobs.apply import engine
    from jobs.apply.rendered import load_rendered
    from jobs.errors import CloudError
    from tests.fixtures.rendered import write_dataset, write_job

    env = load_environment("dev")
    write_job(tmp_path / "rendered", "dev", "faq-0", provider, write_dataset(tmp_path / "data"))
    jobs = load_rendered(tmp_path / "rendered", "dev")
    with pytest.raises(CloudError) as planned:
        engine.plan(env, jobs)
    line = _one_line(str(planned.value))
    assert f"looking up 1 {provider} jobs in the cloud failed: {error}" in line
    assert login in line and "once the cloud answers" not in line, line

    [item] = engine.apply(env, jobs, engine.ApplyOptions(extra={}))
    assert item.result == "failed" and error in item.detail, item
    assert login in item.detail, item


def test_a_bug_is_not_dressed_up_as_a_login_problem(ftops, monkeypatch):
    throttled = boto.ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                                 "ListTrainingJobs")
    monkeypatch.setattr("jobs.providers.sagemaker.SageMaker.list", _raising(throttled))
    with pytest.raises(boto.ClientError):
        ftops("jobs", "list", "--env", "dev")
    monkeypatch.setattr("jobs.providers.sagemaker.SageMaker.list", _raising(KeyError("TrainingJobSummaries")))
    with pytest.raises(KeyError):
        ftops("jobs", "list", "--env", "dev")


def _console_script(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The real entry point (`jobs.cli.main.run`), as a user runs it, with no cloud login."""
    env = {**_without_cloud_logins(dict(os.environ), tmp_path), "FTOPS_STATE_DIR": str(tmp_path / "state"),
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "jobs.cli.main", *args], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)


def test_the_console_script_prints_one_line_for_no_aws_credentials(tmp_path):
    done = _console_script(tmp_path, "jobs", "list", "--env", "dev")
    line = _one_line(done.stderr)
    assert done.returncode == 1
    assert "no usable AWS credentials for environment dev" in line and "account 111111111111" in line, line


# --- DefaultAzureCredential's log ------------------------------------------------------------------------

def test_no_azure_credential_is_one_line_without_the_sdk_log(tmp_path):
    """DefaultAzureCredential logs every credential it tried before it raises; the user sees the one line."""
    done = _console_script(tmp_path, "jobs", "status", "ftjob-abc", "--env", "dev")
    line = _one_line(done.stderr)
    assert done.returncode == 1
    assert "no usable Azure credential for environment dev" in line and "az login" in line, line
    assert "subscription 11111111-1111-4111-8111-111111111111" in line, line


def test_azure_identity_log_level_set_by_the_user_stays(monkeypatch):
    import logging

    identity = logging.getLogger("azure.identity")
    monkeypatch.setattr(identity, "level", logging.INFO)
    clients.azure_credential(load_environment("dev"))
    assert identity.level == logging.INFO


# --- a SageMaker lookup is "not found" only when SageMaker says so ----------------------------------------

@pytest.fixture
def sagemaker(monkeypatch):
    """A real client for `dev` (built by jobs.clients, with throwaway keys) whose answers come from a Stubber."""
    # Imported before anything is patched: importing it binds `client` from jobs.providers.sagemaker, and a first
    # import while that name is patched would keep the stub client there for every later test.
    import jobs.providers.sagemaker_tuning  # noqa: F401

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example")
    sm = clients.aws_client(load_environment("dev"), "sagemaker")
    monkeypatch.setattr("jobs.providers.sagemaker.client", lambda env, service="sagemaker": sm)
    monkeypatch.setattr("jobs.providers.sagemaker_tuning.client", lambda env, service="sagemaker": sm)
    with Stubber(sm) as stub:
        yield stub
        stub.assert_no_pending_responses()


DENIED = "User: arn:aws:sts::111111111111:assumed-role/dev/me is not authorized to perform: {action}"


def test_access_denied_is_not_reported_as_a_missing_job(ftops, sagemaker):
    sagemaker.add_client_error("describe_training_job", "AccessDeniedException",
                               DENIED.format(action="sagemaker:DescribeTrainingJob"))
    result = ftops("jobs", "status", "X", "--env", "dev")
    line = _one_line(result.stderr)
    assert result.exit_code == 1
    assert "no SageMaker training job" not in line
    assert "AWS denied the request for environment dev" in line and "sagemaker:DescribeTrainingJob" in line, line
    assert "ftops preflight --env dev" in line, line


def test_a_missing_training_job_is_still_named(ftops, sagemaker):
    # Real SageMaker answers DescribeTrainingJob of an unknown name so (not with the modelled ResourceNotFound).
    sagemaker.add_client_error("describe_training_job", "ValidationException", "Requested resource not found.")
    result = ftops("jobs", "status", "X", "--env", "dev")
    assert result.exit_code == 1
    assert _one_line(result.stderr) == ("error: job: no SageMaker training job 'X' "
                                        "(`ftops jobs list` shows the jobs of this environment)")


def test_a_name_sagemaker_refuses_is_not_called_missing(ftops, sagemaker):
    sagemaker.add_client_error("describe_training_job", "ValidationException",
                               "1 validation error detected: Value 'a_b' at 'trainingJobName' failed to satisfy "
                               "constraint: Member must satisfy regular expression pattern")
    result = ftops("jobs", "events", "a_b", "--env", "dev")
    line = _one_line(result.stderr)
    assert result.exit_code == 1
    assert "SageMaker refused the training job name 'a_b'" in line and "regular expression" in line, line


def test_tuning_lookups_tell_missing_from_denied(sagemaker):
    from jobs.errors import CloudError

    env, tuning = load_environment("dev"), get("sagemaker-tuning")
    sagemaker.add_client_error("describe_hyper_parameter_tuning_job", "ResourceNotFound",
                               "Amazon SageMaker can't find a tuning job called sweep-1. Type another name.")
    with pytest.raises(CloudError, match="no SageMaker tuning job 'sweep-1'"):
        tuning.describe(env, "sweep-1")
    sagemaker.add_client_error("describe_hyper_parameter_tuning_job", "AccessDeniedException",
                               DENIED.format(action="sagemaker:DescribeHyperParameterTuningJob"))
    with pytest.raises(boto.ClientError, match="AccessDeniedException"):
        tuning.describe(env, "sweep-1")


# --- a broken resolved-values file -----------------------------------------------------------------------

def _resolved(state: Path) -> Path:
    path = state / "resolved" / "local.aws.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize("content, expected", [
    ('{\n  "account": 111111111111,\n  "region": "us-east-1"\n}\n',
     ":2: account: invalid resolved values: expected text, but the file has a number here"),  # file, line, field
    ('{\n  "account": "111111111111",\n', ":3: invalid resolved values: Invalid JSON"),  # not JSON: where it breaks
])
def test_an_invalid_resolved_file_names_file_line_and_field(ftops, isolated_state, tmp_path, content, expected):
    path = _resolved(isolated_state)
    path.write_text(content)
    result = ftops("render", "--env", "local", "--out", tmp_path / "out")
    line = _one_line(result.stderr)
    assert result.exit_code == 1
    assert line.startswith(f"error: {path}{expected}"), line
    assert "ftops infra outputs --env local --cloud aws" in line, line


def test_a_directory_at_the_resolved_path_is_one_line(ftops, isolated_state, tmp_path):
    path = _resolved(isolated_state)
    path.mkdir()
    result = ftops("render", "--env", "local", "--out", tmp_path / "out")
    line = _one_line(result.stderr)
    assert result.exit_code == 1
    assert line.startswith(f"error: {path}: is a directory") and "ftops infra outputs --env local" in line, line


# --- FTOPS_STATE_DIR that is a file ----------------------------------------------------------------------

@pytest.mark.parametrize("command", [("local", "status"), ("render", "--env", "local", "--out", "{out}")],
                         ids=" ".join)
def test_a_state_dir_that_is_a_file_names_the_variable(ftops, monkeypatch, tmp_path, command):
    state = tmp_path / "state"
    state.write_text("not a directory\n")
    monkeypatch.setenv("FTOPS_STATE_DIR", str(state))
    result = ftops(*(part.format(out=tmp_path / "out") for part in command))
    line = _one_line(result.stderr)
    assert result.exit_code == 1
    assert line.startswith(f"error: FTOPS_STATE_DIR: {state} exists and is not a directory"), line
    assert "point FTOPS_STATE_DIR at a directory" in line, line
