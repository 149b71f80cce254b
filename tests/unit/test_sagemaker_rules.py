"""SageMaker's rules at render time (issue 12, item 5): each violation is one line naming the file, the field,
the environment and the rule's source, and nothing `ftops render` writes for any environment breaks one."""

from __future__ import annotations

import copy

import botocore.session
import pytest
from botocore.validate import ParamValidator

from jobs.config.aws import sagemaker_training_instance_types
from jobs.config.environment import load_environment
from jobs.config.resolved import resolved_file
from jobs.errors import ConfigError
from jobs.render import sagemaker_rules
from jobs.render.engine import render_environment
from jobs.training.archive import archive_files, needs_network_at_start, source_archive
from tests.fixtures.render_project import PROD_KEY_ARN

SM = "helpdesk-qwen-lora"
ENVS = ("local", "dev", "staging", "prod")
SWEEP = {"tuning": {"max_jobs": 4, "ranges": {"learning_rate": {"min": 0.00005, "max": 0.0005,
                                                                 "scaling": "Logarithmic"}}}}


@pytest.fixture(scope="module")
def sagemaker_model():
    return botocore.session.get_session().get_service_model("sagemaker")


def test_instance_storage_table_agrees_with_the_sagemaker_sdk_for_every_training_instance_type():
    from sagemaker.core.common_utils import instance_supports_kms

    for instance_type in sorted(sagemaker_training_instance_types()):
        assert sagemaker_rules.has_instance_storage(instance_type) == (not instance_supports_kms(instance_type)), \
            instance_type


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("sweep", [False, True])
def test_every_rendered_request_keeps_the_rules_and_passes_botocore(project, sagemaker_model, env, sweep):
    if sweep:
        project.edit_definition(SM, sweep=SWEEP)
    (job,) = render_environment(load_environment(env), SM)
    name = "sagemaker-tuning.json" if sweep else "sagemaker.json"
    operation = "CreateHyperParameterTuningJob" if sweep else "CreateTrainingJob"
    request = job.documents[name]
    report = ParamValidator().validate(request, sagemaker_model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()
    sagemaker_rules.check_request(job.variant, load_environment(env), request, tuning=sweep)
    body = request["TrainingJobDefinition"] if sweep else request
    assert "VolumeKmsKeyId" not in body["ResourceConfig"]  # ml.g5: instance storage
    if env == "prod":
        assert body["VpcConfig"]["Subnets"] and body["EnableNetworkIsolation"] is True
        assert body["OutputDataConfig"]["KmsKeyId"] == PROD_KEY_ARN


def test_a_volume_key_on_an_instance_with_local_storage_is_refused(project):
    (job,) = render_environment(load_environment("local"), SM)
    request = copy.deepcopy(job.documents["sagemaker.json"])
    request["ResourceConfig"]["VolumeKmsKeyId"] = PROD_KEY_ARN
    with pytest.raises(ConfigError) as caught:
        sagemaker_rules.check_request(job.variant, load_environment("local"), request, tuning=False)
    line = str(caught.value)
    assert "\n" not in line
    assert "definitions/helpdesk-qwen-lora.yaml" in line and "sagemaker.json ResourceConfig.VolumeKmsKeyId" in line
    assert "ml.g5.2xlarge has local instance storage" in line and "[environment local;" in line
    assert "instance_supports_kms" in line


def test_an_instance_without_local_storage_gets_the_key_arn_and_an_alias_is_refused(project):
    project.edit_environment("dev", "  region: us-east-1\n",
                             "  region: us-east-1\n  training:\n    allowed_instance_types: [ml.p3.2xlarge]\n")
    project.edit_environment("prod", "    spot: false", "    allowed_instance_types: [ml.p3.2xlarge]\n    spot: false")
    for env, ceiling in (("dev", 200), ("prod", 1000)):  # prices.yaml has no ml.p3 price; no ceiling, no estimate
        project.edit_environment(env, f"  max_cost_per_job_usd: {ceiling}\n", "")
    # Trained in prod itself (`promotion: retrain`): a promoted job's prod render also renders its staging job,
    # which does not allow ml.p3 here.
    project.edit_definition(SM, compute__instance_type="ml.p3.2xlarge", promotion="retrain")
    (job,) = render_environment(load_environment("prod"), SM)
    assert job.documents["sagemaker.json"]["ResourceConfig"]["VolumeKmsKeyId"] == PROD_KEY_ARN
    assert job.documents["ack.yaml"]["spec"]["resourceConfig"]["volumeKMSKeyID"] == PROD_KEY_ARN
    # dev is not deployed here: its key is only known by its alias, which VolumeKmsKeyId does not accept.
    with pytest.raises(ConfigError, match=r"sagemaker.json ResourceConfig.VolumeKmsKeyId: 'arn:aws:kms:us-east-1:"
                                          r"111111111111:alias/ftops-dev' is not a key id or key ARN .*"
                                          r"\[environment dev; .*ftops infra outputs --env dev"):
        render_environment(load_environment("dev"), SM)


def test_prod_without_its_resolved_values_is_refused_with_the_outputs_command(project):
    resolved_file("prod", "aws").unlink()
    with pytest.raises(ConfigError) as caught:
        render_environment(load_environment("prod"), SM)
    line = str(caught.value)
    assert "sagemaker.json VpcConfig" in line and "[environment prod;" in line
    assert "run `ftops infra outputs --env prod` and commit environments/resolved/prod.aws.json" in line


def test_the_cli_prints_the_prod_refusal_as_one_line(project, ftops, tmp_path):
    resolved_file("prod", "aws").unlink()
    result = ftops("render", "--env", "prod", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr.count("\n") <= 1 and "ftops infra outputs --env prod" in result.stderr
    assert not (tmp_path / "out" / "prod").exists()


def test_network_isolation_ships_the_code_as_a_channel(project):
    (job,) = render_environment(load_environment("prod"), SM)
    request = job.documents["sagemaker.json"]
    code = next(c for c in request["InputDataConfig"] if c["ChannelName"] == "code")
    assert request["HyperParameters"]["sagemaker_submit_directory"] == "/opt/ml/input/data/code/sourcedir.tar.gz"
    assert code["DataSource"]["S3DataSource"]["S3Uri"] == job.index["source_archive"]["s3_uri"]
    assert job.index["source_archive"]["offline"] is True
    env = load_environment("prod")
    s3_code = copy.deepcopy(request)
    s3_code["HyperParameters"]["sagemaker_submit_directory"] = code["DataSource"]["S3DataSource"]["S3Uri"]
    with pytest.raises(ConfigError, match="cannot download its code from S3"):
        sagemaker_rules.check_request(job.variant, env, s3_code, tuning=False)
    no_channel = copy.deepcopy(request)
    no_channel["InputDataConfig"] = [c for c in request["InputDataConfig"] if c["ChannelName"] != "code"]
    with pytest.raises(ConfigError, match="no 'code' channel"):
        sagemaker_rules.check_request(job.variant, env, no_channel, tuning=False)
    with pytest.raises(ConfigError, match="requirements.txt installs from a package index"):
        sagemaker_rules.check_request(job.variant, env, request, tuning=False,
                                      archive_files=archive_files(source_archive().data))


def test_the_offline_archive_needs_no_network_at_start(tmp_path):
    networked, offline = archive_files(source_archive().data), archive_files(source_archive(offline=True).data)
    assert needs_network_at_start(networked)  # what a networked job pip-installs at start
    assert "requirements.txt" not in offline and not needs_network_at_start(offline)
    assert {"train.py", "hparams.py"} <= set(offline)
    # With wheels beside the script, the archive ships them and installs from them only.
    root = tmp_path / "training"
    root.mkdir()
    (root / "train.py").write_text("print('hi')\n")
    (root / "requirements.txt").write_text("peft==0.21.2\n")
    (root / "wheels").mkdir()
    (root / "wheels" / "peft-0.21.2-py3-none-any.whl").write_bytes(b"wheel")
    with_wheels = archive_files(source_archive(root, offline=True).data)
    assert with_wheels["requirements.txt"].startswith(b"--no-index\n--find-links wheels\n")
    assert "wheels/peft-0.21.2-py3-none-any.whl" in with_wheels and not needs_network_at_start(with_wheels)
    assert "wheels/peft-0.21.2-py3-none-any.whl" not in archive_files(source_archive(root).data)


def test_a_sweep_with_container_variables_is_refused_since_ack_cannot_carry_them(project):
    project.edit_definition(SM, sweep=SWEEP, compute__environment={"RUN_NOTE": "nightly"})
    with pytest.raises(ConfigError, match=r"sagemaker-tuning.json TrainingJobDefinition.Environment: a sweep cannot "
                                          r"carry container variables \(RUN_NOTE\).*\[environment local; rule: ACK"):
        render_environment(load_environment("local"), SM)
