"""Runs the checks for one environment and collects the rows. `cheap` is what `ftops apply` runs first:
identity, permissions and quotas for the jobs it will submit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobs.config.environment import Environment, environment_file
from jobs.preflight import aws as aws_checks
from jobs.preflight import azure as azure_checks
from jobs.preflight.access import SUBMIT_KINDS, questions
from jobs.preflight.needs import JobSpec, azure_need
from jobs.preflight.report import ENV, Report, Row


@dataclass
class Sources:
    """Where the checks read from: boto3 clients per service and one ARM GET function (tests inject both)."""

    aws_client: Callable[[str], Any] | None = None
    arm: Callable[[str, str], dict] | None = None

    @classmethod
    def for_env(cls, env: Environment, clouds: set[str] | None = None) -> "Sources":
        """Clients for the environment's clouds (only `clouds` when given: apply asks only about its jobs')."""
        from jobs import clients

        sources = cls()
        if env.aws is not None and env.aws.enabled and (clouds is None or "aws" in clouds):
            cache: dict[str, Any] = {}

            def aws_client(service: str) -> Any:
                if service not in cache:
                    cache[service] = clients.aws_client(env, service)
                return cache[service]

            sources.aws_client = aws_client
        if env.azure is not None and env.azure.enabled and (clouds is None or "azure" in clouds):
            from infra.azure.clients import AzureClients

            sources.arm = azure_checks.ArmReader(AzureClients.for_env(env))
        return sources


def clouds_of(specs: list[JobSpec]) -> set[str]:
    return {{"sagemaker": "aws", "azure-openai": "azure"}.get(s.provider, s.provider) for s in specs}


def costs(env: Environment, specs: list[JobSpec]) -> list[Row]:
    ceiling = env.policy.max_cost_per_job_usd
    rows = []
    for spec in specs:
        cost = spec.estimated_cost_usd
        if cost is None:
            rows.append(Row("cost", spec.name, "warn", "no cost estimate was rendered for this job",
                            "run `ftops data prepare` so the token counts are known, then re-render", "rendered job"))
        elif ceiling is not None and cost > ceiling:
            rows.append(Row("cost", spec.name, "block", f"estimated ${cost:,.2f}, above the ceiling ${ceiling:,.2f}",
                            f"shrink the job, or raise policy.max_cost_per_job_usd in {environment_file(env.name).name}",
                            "rendered job"))
        else:
            limit = f" (ceiling ${ceiling:,.2f})" if ceiling is not None else " (no ceiling)"
            rows.append(Row("cost", spec.name, "ok", f"estimated ${cost:,.2f}{limit}", "", "rendered job"))
    return rows


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):   # botocore's ClientError
        return str(response.get("Error", {}).get("Code") or type(exc).__name__)
    return type(exc).__name__


def _guard(report: Report, check: str, fn: Callable[[], list[Row]]) -> bool:
    """A check that fails to run is a blocking row naming the error, never a traceback that hides the others.
    Returns False when the credentials themselves failed (the cloud's remaining checks would say the same)."""
    try:
        report.add(*fn())
        return True
    except Exception as exc:  # noqa: BLE001 - every check reports, whatever broke
        if type(exc).__name__ == "ClientAuthenticationError":   # azure.core: no usable Azure credential
            report.add(Row("azure-identity", ENV, "block", "no Azure credential works here: "
                           + str(exc).splitlines()[0][:300],
                           "`az login` on a laptop; workload identity (OIDC) in the pipeline", "azure-identity"))
            return False
        first = (str(exc).splitlines() or [""])[0][:300]
        code = _error_code(exc)
        fix = ("grant this identity the read permission the error names (README, Preflight: what preflight needs)"
               if "denied" in code.lower() or "unauthorized" in code.lower() or "forbidden" in first.lower()
               else "fix the access or connectivity the error names, then rerun `ftops preflight`")
        report.add(Row(check, ENV, "block", f"check failed: {code}: {first}", fix, "-"))
        return True


def run(env: Environment, specs: list[JobSpec], sources: Sources, *, cheap: bool = False,
        runner_ip: str | None = None) -> Report:
    report = Report(env.name)
    aws_specs = [s for s in specs if s.provider == "sagemaker"]
    azure_needs = [n for n in (azure_need(s) for s in specs if s.provider == "azure-openai") if n]
    if sources.aws_client is not None:
        client = sources.aws_client
        rows, _ = aws_checks.identity(env, client)
        report.add(*rows)
        if not any(r.status == "block" for r in rows):
            def permission_rows() -> list[Row]:
                asked = questions(env, aws_specs, SUBMIT_KINDS if cheap else None)
                if asked is None:
                    return [Row("permission", ENV, "skip", "the access model (jobs.access) is not part of this "
                                "build, so no access is simulated", "", "-")]
                return aws_checks.permissions(env, client, asked)

            _guard(report, "permission", permission_rows)
            _guard(report, "quota", lambda: aws_checks.quotas(env, client, aws_specs, endpoints=not cheap))
            if not cheap:
                _guard(report, "capacity", lambda: aws_checks.capacity(env, client, aws_specs))
                _guard(report, "stack", lambda: aws_checks.deployed_state(env, client))
                _guard(report, "budget", lambda: aws_checks.budget(env, client, aws_specs))
    if sources.arm is not None:
        arm = sources.arm
        authenticated = _guard(report, "azure-permission", lambda: azure_checks.permissions(env, arm))
        if authenticated and azure_needs:
            authenticated = _guard(report, "azure-model", lambda: azure_checks.models_and_quota(env, arm, azure_needs))
        if authenticated and not cheap:
            _guard(report, "azure-network", lambda: azure_checks.network(env, arm, runner_ip))
    if not cheap:
        report.add(*costs(env, specs))
    return report
