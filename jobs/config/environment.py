"""The environment model: one YAML file per environment under `environments/`."""

from __future__ import annotations

import difflib
import re
from functools import cache
from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator

from jobs import paths
from jobs.config.aws import AwsSettings
from jobs.config.azure import AzureSettings
from jobs.config.base import Declaration, check_cloud_tags, check_named_like_file
from jobs.config.data import DataSettings
from jobs.config.github import GitHubSettings
from jobs.config.policy import PolicySettings
from jobs.errors import ConfigError
from jobs.yamlio import load_model

ENV_NAME = r"^[a-z][a-z0-9-]{1,15}$"


class Environment(Declaration):
    name: str = Field(pattern=ENV_NAME)
    """The environment's name; must equal the file name (`environments/<name>.yaml`)."""

    description: str = ""
    """What this environment is for, shown by `ftops env show`."""

    emulated: bool = False
    """True for `local`: every endpoint points at the emulators that `ftops local up` starts on loopback."""

    owner: str = Field(min_length=1)
    """The team that owns this environment; applied as the `owner` tag everywhere."""

    tags: dict[str, str] = {}
    """Tags applied to every resource and job of this environment (cost allocation)."""

    aws: AwsSettings | None = None
    """AWS settings; omit to run this environment on Azure only."""

    azure: AzureSettings | None = None
    """Azure settings; omit to run this environment on AWS only."""

    github: GitHubSettings | None = None
    """The GitHub repository whose workflows apply this environment (OIDC sign-in to AWS); omit for none."""

    data: DataSettings = DataSettings()
    """Settings of the data stage (splits, upload locations, price overrides)."""

    policy: PolicySettings = PolicySettings()
    """Policy every job must pass before it is rendered (spot, cost ceiling, required tags, limits)."""

    @field_validator("name")
    @classmethod
    def check_name_matches_file(cls, name: str, info: ValidationInfo) -> str:
        return check_named_like_file(name, info.context)

    @field_validator("tags")
    @classmethod
    def check_tags(cls, tags: dict[str, str]) -> dict[str, str]:
        return check_cloud_tags(tags)

    @property
    def is_production(self) -> bool:
        """`prod`, or an environment whose cloud blocks say `production: true` (the stricter rules apply)."""
        # Asked for every job: a block without the field is skipped, not asked (pydantic formats an error for that).
        return self.name == "prod" or any(block is not None and "production" in type(block).model_fields
                                          and bool(block.production) for block in (self.aws, self.azure))

    @property
    def all_tags(self) -> dict[str, str]:
        """The tags every resource gets: the declared ones plus who manages it, where and for whom."""
        return {**self.tags, "managed-by": "ftops", "environment": self.name, "owner": self.owner}

    def require_aws(self) -> AwsSettings:
        if self.aws is None or not self.aws.enabled:
            raise ConfigError("this environment has no AWS settings", source=environment_file(self.name),
                              field="aws", hint="add an aws: block or use an environment that has one")
        return self.aws

    def require_azure(self) -> AzureSettings:
        if self.azure is None or not self.azure.enabled:
            raise ConfigError("this environment has no Azure settings", source=environment_file(self.name),
                              field="azure", hint="add an azure: block or use an environment that has one")
        return self.azure


def environment_file(name: str) -> Path:
    return paths.environments_dir() / f"{name}.yaml"


def environment_names() -> list[str]:
    return sorted(path.stem for path in paths.environments_dir().glob("*.yaml") if path.is_file())


@cache
def load_environment(name: str) -> Environment:
    if name.endswith((".yaml", ".yml")) and "/" not in name:  # `--env dev.yaml`: the name is the file's stem
        raise ConfigError(f"unknown environment {name!r}", source=paths.environments_dir(),
                          hint=f"pass the name without the extension: {Path(name).stem}")
    path = environment_file(name)
    valid = re.match(ENV_NAME, name) is not None
    if path.is_file() and not valid:  # a file is there, but its name can never name an environment
        raise ConfigError(f"{path.name} does not name an environment: names are a lowercase letter, then 1-15 "
                          "lowercase letters, digits or hyphens", source=path,
                          hint="rename the file (e.g. environments/my-env.yaml) or move it out of environments/")
    if not valid or not path.is_file():
        names = [n for n in environment_names() if re.match(ENV_NAME, n)]
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        close = difflib.get_close_matches(name, names, n=1)
        hint = (f"did you mean {close[0]!r}? " if close else "") + f"known environments: {', '.join(names) or 'none'}"
        if valid and not path.is_dir():
            hint += f"; add environments/{name}.yaml to create it"
        raise ConfigError(f"unknown environment {name!r} (environments/{name}.yaml {what})"
                          if valid else f"unknown environment {name!r}", source=path if valid else
                          paths.environments_dir(), hint=hint)
    return load_model(path, Environment)
