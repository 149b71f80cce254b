"""The access model (jobs.access, built with the AWS first-contact work) adapted to preflight's questions.

Each access names a principal kind (`pipeline`, `execution`, `endpoint`); preflight asks IAM about the role
ARN that kind resolves to in this environment. When the access model is not part of this build, the permission
rows say so instead of guessing a list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobs.config.environment import Environment
from jobs.preflight.needs import JobSpec
from jobs.preflight.report import ENV


@dataclass(frozen=True)
class Question:
    principal: str
    """The role ARN to simulate."""
    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)
    why: str = ""
    job: str = ENV


SUBMIT_KINDS = ("training", "sweep")
"""What `ftops apply` needs (the cheap preflight); a full preflight also asks about deploy, evaluation, promotion."""


def questions(env: Environment, specs: list[JobSpec], kinds: tuple[str, ...] | None = None) -> list[Question] | None:
    """Every access the rendered jobs and the environment imply, as role-ARN questions; None without the model."""
    try:
        from jobs import access
    except ImportError:
        return None
    from jobs.config.resolved import resolved_aws

    resolved = resolved_aws(env)
    roles = {"pipeline": resolved.pipeline_role_arn, "execution": resolved.execution_role_arn,
             "endpoint": resolved.endpoint_role_arn}   # the stack's own endpoint role, not the training role
    found: dict[tuple, Question] = {}

    def add(items, job: str) -> None:
        for item in items:
            question = Question(roles[item.principal], item.action, item.resource, dict(item.context or {}),
                                item.why, job)
            found.setdefault((question.principal, question.action, question.resource,
                              repr(sorted(question.context.items()))), question)

    for spec in specs:
        if spec.provider == "sagemaker" and spec.rendered is not None:
            add(access.accesses_for_job(env, spec.rendered, **({"kinds": kinds} if kinds else {})), spec.name)
    add(access.accesses_for_environment(env), ENV)
    return list(found.values())
