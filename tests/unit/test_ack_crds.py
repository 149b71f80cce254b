"""Every rendered `ack.yaml` validates strictly against the ACK SageMaker controller's own CRDs: unknown fields
are errors, as `kubectl apply --validate=strict` makes them (the CRDs come from ../shared/contracts)."""

from __future__ import annotations

import copy
import itertools
from functools import cache
from pathlib import Path

import jsonschema
import pytest
import yaml

from jobs.config.environment import load_environment
from jobs.render.engine import render_environment
from tests.fixtures.contracts import contracts_dir

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "render"
CRDS = {"TrainingJob": "sagemaker.services.k8s.aws_trainingjobs.yaml",
        "HyperParameterTuningJob": "sagemaker.services.k8s.aws_hyperparametertuningjobs.yaml"}
SM = "helpdesk-qwen-lora"
ENVS = ("local", "dev", "staging", "prod")
VARIANTS = {
    "shipped": {},
    "full-fine-tuning": {"peft": "full", "hyperparameters__learning_rate": 0.00002},
    "environment-variables": {"compute__environment": {"RUN_NOTE": "nightly"}},
    "tuning": {"sweep": {"tuning": {"max_jobs": 4, "ranges": {
        "learning_rate": {"min": 0.00005, "max": 0.0005, "scaling": "Logarithmic"}, "lora_r": {"min": 8, "max": 32},
        "epochs": {"values": [2, 3]}}}}},
}


def strict(schema: dict) -> dict:
    """The structural schema as JSON Schema where objects refuse fields they do not declare.

    Kubernetes prunes or (with --validate=strict) rejects unknown fields of every object that declares
    `properties`, unless it says `x-kubernetes-preserve-unknown-fields`; `additionalProperties` (maps) stays
    as the CRD gives it; `nullable: true` admits null.
    """
    schema = copy.deepcopy(schema)

    def walk(node: dict) -> None:
        if node.get("nullable"):
            node["type"] = [node["type"], "null"] if "type" in node else None
        for child in node.get("properties", {}).values():
            walk(child)
        if isinstance(node.get("items"), dict):
            walk(node["items"])
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"])
        if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node \
                and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False

    walk(schema)
    return schema


@cache
def crd(kind: str) -> tuple[str, dict]:
    document = yaml.safe_load((contracts_dir("ack-sagemaker-controller") / CRDS[kind]).read_text())
    assert document["spec"]["names"]["kind"] == kind
    (version,) = [v for v in document["spec"]["versions"] if v.get("served") and v.get("storage")]
    return f"{document['spec']['group']}/{version['name']}", strict(version["schema"]["openAPIV3Schema"])


def validate(document: dict) -> None:
    api_version, schema = crd(document["kind"])
    assert document["apiVersion"] == api_version
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)


@pytest.mark.parametrize(("env", "variant"), list(itertools.product(ENVS, VARIANTS)))
def test_every_rendered_ack_resource_validates_strictly(project, env, variant):
    contracts_dir("ack-sagemaker-controller")
    if VARIANTS[variant]:
        project.edit_definition(SM, **VARIANTS[variant])
    (job,) = render_environment(load_environment(env), SM)
    document = job.documents["ack.yaml"]
    assert document["kind"] == ("HyperParameterTuningJob" if variant == "tuning" else "TrainingJob")
    validate(document)


@pytest.mark.parametrize("case", sorted(p.name for p in GOLDEN.glob("sagemaker-*")))
def test_golden_ack_snapshots_validate_strictly(case):
    validate(yaml.safe_load((GOLDEN / case / "ack.yaml").read_text()))


def test_the_strict_validator_rejects_what_the_crd_does_not_have():
    """The mistakes the tuning template used to make: `type` for `type_`, and a definition `environment`."""
    document = yaml.safe_load((GOLDEN / "sagemaker-tuning" / "ack.yaml").read_text())
    objective = document["spec"]["hyperParameterTuningJobConfig"]["hyperParameterTuningJobObjective"]
    objective["type"] = objective.pop("type_")
    with pytest.raises(AssertionError, match="'type' was unexpected"):
        validate(document)
    document = yaml.safe_load((GOLDEN / "sagemaker-tuning" / "ack.yaml").read_text())
    document["spec"]["trainingJobDefinition"]["environment"] = {"HF_HUB_OFFLINE": "1"}
    with pytest.raises(AssertionError, match="'environment' was unexpected"):
        validate(document)
    document = yaml.safe_load((GOLDEN / "sagemaker-base" / "ack.yaml").read_text())
    document["spec"]["resourceConfig"]["volumeKmsKeyId"] = "x"  # the API's spelling, not ACK's
    with pytest.raises(AssertionError, match="'volumeKmsKeyId' was unexpected"):
        validate(document)


@pytest.mark.parametrize("sweep", [False, True])
def test_a_volume_key_validates_where_the_instance_takes_one(project, sweep):
    contracts_dir("ack-sagemaker-controller")
    project.edit_environment("prod", "    spot: false", "    allowed_instance_types: [ml.p3.2xlarge]\n    spot: false")
    project.edit_environment("prod", "  max_cost_per_job_usd: 1000\n", "")  # no ml.p3 price, so no cost ceiling
    # Trained in prod itself (`promotion: retrain`): a promoted job's prod render also renders its staging job,
    # and staging does not allow ml.p3.
    project.edit_definition(SM, compute__instance_type="ml.p3.2xlarge", promotion="retrain",
                            **({"sweep": VARIANTS["tuning"]["sweep"]} if sweep else {}))
    (job,) = render_environment(load_environment("prod"), SM)
    document = job.documents["ack.yaml"]
    spec = document["spec"]["trainingJobDefinition"] if sweep else document["spec"]
    assert spec["resourceConfig"]["volumeKMSKeyID"].startswith("arn:aws:kms:us-east-1:333333333333:key/")
    validate(document)
