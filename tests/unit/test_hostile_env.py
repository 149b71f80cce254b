"""Environment files (issue 16, item 4): a misspelt key is named with a did-you-mean, and regions are checked when
the file loads (AWS against botocore's partition data, Azure against the versioned list), with file and line."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from jobs.config.environment import load_environment
from jobs.config.regions import aws_regions, azure_locations, partition_of
from jobs.errors import ConfigError
from jobs.render import definitions


def _load(project, old: str, new: str) -> ConfigError:
    project.edit_environment("dev", old, new)
    load_environment.cache_clear()
    with pytest.raises(ConfigError) as err:
        load_environment("dev")
    return err.value


def _line_of(project, text: str) -> int:
    lines = (project.root / "environments" / "dev.yaml").read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if text in line)


def test_a_misspelt_key_is_named_with_a_did_you_mean_not_as_a_missing_field(project):
    err = _load(project, "  region: us-east-1", "  regoin: us-east-1")
    assert "unknown key regoin, did you mean region?" in str(err)
    assert "Field required" not in err.message
    assert err.field == "aws.regoin" and err.line == _line_of(project, "regoin:")
    assert str(err).startswith(str(project.root / "environments" / "dev.yaml"))


def test_a_misspelt_top_level_key_is_named_too(project):
    err = _load(project, "owner: platform-team", "ownr: platform-team")
    assert "unknown key ownr, did you mean owner?" in str(err) and err.line == _line_of(project, "ownr:")


def test_a_misspelt_aws_region_fails_at_load_with_its_line(project):
    err = _load(project, "  region: us-east-1", "  region: us-esat-1")
    assert err.field == "aws.region" and err.line == _line_of(project, "us-esat-1")
    assert "'us-esat-1' is not an AWS region" in err.message and "did you mean us-east-1?" in err.message


def test_a_misspelt_azure_location_fails_at_load_with_its_line(project):
    err = _load(project, "  location: swedencentral", "  location: swedencentrl")
    assert err.field == "azure.location" and err.line == _line_of(project, "swedencentrl")
    assert "did you mean swedencentral?" in err.message and "azure_locations.yaml" in err.message


def test_aws_regions_come_from_botocore_partitions():
    spec = importlib.util.find_spec("botocore")
    data = json.loads((Path(spec.origin).parent / "data" / "partitions.json").read_text())
    aws = next(p for p in data["partitions"] if p["id"] == "aws")
    assert {r for r in aws["regions"] if not r.endswith("-global")} <= aws_regions()
    assert "us-east-1" in aws_regions() and "aws-global" not in aws_regions()


def test_arns_outside_the_commercial_partition_carry_their_partition(project):
    from jobs.config.resolved import derive_aws

    assert (partition_of("cn-north-1"), partition_of("us-gov-west-1"), partition_of("eu-west-1")) == (
        "aws-cn", "aws-us-gov", "aws")
    assert partition_of("cn-southwest-9") == "aws-cn"  # newer than the data: its partition's region pattern
    text = (project.root / "environments" / "dev.yaml").read_text()
    region = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.strip().startswith("region:"))
    (project.root / "environments" / "dev.yaml").write_text(text.replace(f"region: {region}", "region: cn-north-1"))
    load_environment.cache_clear()
    resolved = derive_aws(load_environment("dev"))
    arns = [resolved.kms_key_arn, resolved.execution_role_arn, resolved.endpoint_role_arn, resolved.pipeline_role_arn,
            resolved.notifications_topic_arn]
    assert all(arn.startswith("arn:aws-cn:") for arn in arns), arns


def test_azure_location_list_is_versioned_and_holds_the_shipped_environments():
    retrieved, locations = azure_locations()
    assert retrieved and {"swedencentral", "westeurope", "eastus2"} <= locations


def test_a_misspelt_definition_key_is_named_with_a_did_you_mean(project):
    path = project.root / "definitions" / "helpdesk-qwen-lora.yaml"
    path.write_text(path.read_text().replace("hyperparameters:", "hyperparamters:", 1))
    definitions.clear_cache()
    with pytest.raises(ConfigError, match="unknown key hyperparamters, did you mean hyperparameters?") as err:
        definitions.load_variants(path, "local")
    assert err.value.line is not None


def _env_error(ftops, *args) -> str:
    load_environment.cache_clear()
    result = ftops("env", *args)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def test_an_environment_file_with_an_impossible_name_is_named_with_the_rule(project, ftops):
    environments = project.root / "environments"
    (environments / "Copy of dev.yaml").write_text((environments / "dev.yaml").read_text())
    for args in (("list",), ("show", "Copy of dev")):
        line = _env_error(ftops, *args)
        assert "Copy of dev.yaml does not name an environment" in line and "rename the file" in line
        assert "known environments" not in line  # it once listed the file it then called unknown


def test_environment_names_are_not_paths_or_file_names(project, ftops):
    assert "pass the name without the extension: dev" in _env_error(ftops, "show", "dev.yaml")
    line = _env_error(ftops, "show", "../README")
    assert "add environments/" not in line and "known environments: dev, local, prod, staging" in line
    (project.root / "environments" / "box.yaml").mkdir()
    line = _env_error(ftops, "show", "box")
    assert "environments/box.yaml is a directory" in line and "known environments: dev, local, prod, staging" in line
    load_environment.cache_clear()
    assert ftops("env", "list").exit_code == 0  # a directory is not an environment file


def test_an_unquoted_account_id_is_told_to_be_quoted(project):
    err = _load(project, 'account: "111111111111"', "account: 111111111111")
    assert err.field == "aws.account" and err.line == _line_of(project, "account: 111111111111")
    assert "expected text, but the file has a number here (111111111111)" in err.message
    assert err.hint == 'quote the value as written, e.g. "111111111111"'


def test_a_pattern_error_says_what_the_field_expects_not_only_the_regex(project, ftops, tmp_path):
    path = project.root / "definitions" / "helpdesk-qwen-lora.yaml"
    text = path.read_text()
    path.write_text(text.replace("dataset: datasets/it-helpdesk/prepared/manifest.json",
                                 "dataset: datasets/it-helpdesk/prepared", 1))
    result = ftops("render", "--env", "local", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert "dataset: 'datasets/it-helpdesk/prepared' is not a valid value here" in result.stderr
    assert "expected: The prepared dataset's manifest written by `ftops data prepare`" in result.stderr


def test_availability_zones_of_another_region_are_refused_at_their_line(project):
    project.edit_environment("prod", "availability_zones: [us-east-1a, us-east-1b]",
                             "availability_zones: [us-east-1a, us-west-2b]")
    load_environment.cache_clear()
    with pytest.raises(ConfigError) as err:
        load_environment("prod")
    assert err.value.field == "aws.vpc.availability_zones"
    assert "'us-west-2b' is not a zone of us-east-1" in err.value.message
    lines = (project.root / "environments" / "prod.yaml").read_text().splitlines()
    assert err.value.line == next(i for i, row in enumerate(lines, start=1) if "availability_zones:" in row)


def test_a_negative_quota_is_refused(project):
    text = (project.root / "environments" / "local.yaml").read_text()
    quota = next(row for row in text.splitlines() if row.strip().startswith("ml.") and ":" in row)
    project.edit_environment("local", quota, quota.rsplit(":", 1)[0] + ": -2")
    load_environment.cache_clear()
    with pytest.raises(ConfigError, match="greater than or equal to 0") as err:
        load_environment("local")
    assert err.value.field.startswith("aws.quotas.")


def test_further_errors_are_named_not_only_counted(project):
    project.edit_environment("dev", "  region: us-east-1", "  region: 7")
    err = _load(project, 'account: "111111111111"', "account: nope")
    assert "(+1 more error, at aws." in err.message
