"""The `github:` block of an environment: which repository's workflows may sign in to the cloud with OIDC."""

from __future__ import annotations

from pydantic import Field

from jobs.config.base import Declaration

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
"""GitHub Actions' OIDC issuer (docs.github.com, "Configuring OpenID Connect in Amazon Web Services")."""
STS_AUDIENCE = "sts.amazonaws.com"
"""The audience aws-actions/configure-aws-credentials requests, and the provider's client id."""


class GitHubSettings(Declaration):
    """The repository whose GitHub Actions workflows apply this environment, signing in with OIDC."""

    repository: str = Field(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
    """`ORG/REPO`. The pipeline role trusts only `repo:ORG/REPO:environment:<this environment's name>`: jobs that
    run in the GitHub environment named like this ftops environment."""

    oidc_provider_arn: str | None = Field(
        None, pattern=r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$")
    """The account's existing GitHub OIDC provider, to import instead of creating one (an account has at most one
    provider per issuer URL: set this when another stack or environment in the same account already made it)."""

    def subject(self, environment: str) -> str:
        """The `sub` claim of a workflow job running in GitHub environment `environment`."""
        return f"repo:{self.repository}:environment:{environment}"
