"""What `ftops deploy`, `undeploy` and the evaluation of a SageMaker endpoint call, and what the endpoint's
container needs (its role is the model's ExecutionRoleArn)."""

from __future__ import annotations

from typing import Any

from jobs.access.jobs import (SAGEMAKER, image_pull, logs_and_metrics, network_interfaces, s3_read_prefix,
                              split_s3)
from jobs.access.model import Access, Arns, tag_context

ENDPOINT_LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"
ENDPOINT_METRICS_NAMESPACE = "/aws/sagemaker/Endpoints"


def model_artifact(output_path: str, job_name: str) -> str:
    """Where SageMaker writes a training job's model: `<S3OutputPath>/<job name>/output/model.tar.gz`."""
    return output_path.rstrip("/") + f"/{job_name}/output/model.tar.gz"


def deploy_accesses(arns: Arns, *, job_name: str, model_data: str | list[str], image: str, settings: dict[str, Any],
                    tags: dict[str, str], role_arn: str, vpc: dict[str, Any] | None) -> list[Access]:
    """`model_data`: the artifacts the endpoint may serve (the training job's, and a promoted copy)."""
    from jobs.providers.sagemaker import endpoint_names

    # Each served version's model and config carry a digest suffix (endpoint_names); the pipeline role grants
    # them as `model/*` and `endpoint-config/*` under tag conditions, so the digest-less names stand for them.
    names = endpoint_names(job_name)
    model = arns.sagemaker("model", names["model"])
    config = arns.sagemaker("endpoint-config", names["config"])
    endpoint = arns.sagemaker("endpoint", names["endpoint"])
    why = f"deploy of {job_name}"
    request_tags = tag_context(tags, request=True)
    on_resource = tag_context(tags, request=False)
    model_context: dict[str, Any] = dict(request_tags)
    if vpc:
        model_context.update({"sagemaker:VpcSubnets": list(vpc["Subnets"]),
                              "sagemaker:VpcSecurityGroupIds": list(vpc["SecurityGroupIds"]),
                              "sagemaker:NetworkIsolation": "true"})
    config_context: dict[str, Any] = dict(request_tags)
    if not settings.get("serverless"):
        config_context["sagemaker:InstanceTypes"] = [settings.get("instance_type", "ml.g5.xlarge")]
        config_context["sagemaker:VolumeKmsKeyArn"] = arns.key_arn
    out = [
        Access("pipeline", "iam:PassRole", role_arn, {"iam:PassedToService": SAGEMAKER},
               f"{why}: pass the endpoint role to SageMaker"),
        Access("pipeline", "sagemaker:CreateModel", model, model_context, f"{why}: model"),
        Access("pipeline", "sagemaker:AddTags", model, {**request_tags, "sagemaker:TaggingAction": "CreateModel"},
               f"{why}: model tags set on create"),
        Access("pipeline", "sagemaker:DescribeModel", model, on_resource, f"{why}: model exists?"),
        Access("pipeline", "sagemaker:CreateEndpointConfig", config, config_context, f"{why}: endpoint config"),
        Access("pipeline", "sagemaker:AddTags", config,
               {**request_tags, "sagemaker:TaggingAction": "CreateEndpointConfig"}, f"{why}: config tags set on create"),
        Access("pipeline", "sagemaker:DescribeEndpointConfig", config, on_resource, f"{why}: config exists?"),
        # CreateEndpoint and UpdateEndpoint are authorized on the endpoint and on the config they name.
        *(Access("pipeline", "sagemaker:CreateEndpoint", arn, request_tags, f"{why}: endpoint")
          for arn in (endpoint, config)),
        Access("pipeline", "sagemaker:AddTags", endpoint,
               {**request_tags, "sagemaker:TaggingAction": "CreateEndpoint"}, f"{why}: endpoint tags set on create"),
        *(Access("pipeline", "sagemaker:UpdateEndpoint", arn, on_resource, f"{why}: new config on an existing endpoint")
          for arn in (endpoint, config)),
        Access("pipeline", "sagemaker:DescribeEndpoint", endpoint, on_resource, f"{why}: status"),
        Access("pipeline", "sagemaker:DeleteEndpoint", endpoint, on_resource, f"undeploy of {job_name}"),
        Access("pipeline", "sagemaker:DeleteEndpointConfig", config, on_resource, f"undeploy of {job_name}"),
        Access("pipeline", "sagemaker:DeleteModel", model, on_resource, f"undeploy of {job_name}"),
    ]
    # Whether CreateModel checks the artifact with the caller's credentials is not documented; the endpoint's
    # role reads it when the container starts, which is what is checked here.
    serving = f"endpoint {names['endpoint']}"
    for uri in [model_data] if isinstance(model_data, str) else model_data:
        bucket, key = split_s3(uri)
        out.append(Access("endpoint", "s3:GetObject", arns.s3(bucket, key), {}, f"{serving}: model artifact {key}"))
    out.append(Access("endpoint", "kms:Decrypt", arns.key_arn, {"kms:ViaService": f"s3.{arns.region}.amazonaws.com"},
                      f"{serving}: model artifact (SSE-KMS)"))
    out += image_pull(arns, "endpoint", image, f"{serving}: inference image")
    out += logs_and_metrics(arns, "endpoint", ENDPOINT_LOG_GROUP_PREFIX + names["endpoint"],
                            "AllTraffic/i-0123456789abcdef0", f"{serving}: logs", ENDPOINT_METRICS_NAMESPACE)
    if not settings.get("serverless"):
        out += [Access("endpoint", "kms:CreateGrant", arns.key_arn, {"kms:GrantIsForAWSResource": "true"},
                       f"{serving}: encrypted instance volume"),
                Access("endpoint", "kms:DescribeKey", arns.key_arn, {}, f"{serving}: encrypted instance volume")]
    out += network_interfaces(arns, "endpoint", vpc, serving)
    return out


def evaluation_accesses(arns: Arns, *, job_name: str, model_data: str) -> list[Access]:
    """The promotion gate's evaluation: it calls the deployed endpoint, or downloads the model to score it locally."""
    from jobs.providers.sagemaker import endpoint_names

    names = endpoint_names(job_name)  # the digest-less names stand for the digested ones (deploy_accesses)
    endpoint = arns.sagemaker("endpoint", names["endpoint"])
    why = f"evaluation of {job_name}"
    return [Access("pipeline", "sagemaker:InvokeEndpoint", endpoint, {}, f"{why}: endpoint target"),
            # What the endpoint serves, checked against the model record the evaluation is recorded on.
            Access("pipeline", "sagemaker:DescribeEndpoint", endpoint, {}, f"{why}: the endpoint's config"),
            Access("pipeline", "sagemaker:DescribeEndpointConfig", arns.sagemaker("endpoint-config", names["config"]),
                   {}, f"{why}: the config's model"),
            Access("pipeline", "sagemaker:DescribeModel", arns.sagemaker("model", names["model"]), {},
                   f"{why}: the model's artifact"),
            *s3_read_prefix(arns, "pipeline", model_data, f"{why}: local-model target downloads the artifact")]


def base_model_accesses(arns: Arns, requests: dict[str, dict[str, Any]], tags: dict[str, str]) -> list[Access]:
    """The promotion gate's base-model endpoint (`ftops eval --gate` without `aws.gate_base_endpoint`), from the
    requests the gate sends (jobs.eval.gate_run.base_model_requests): a model over the uncompressed base weights
    (an S3 prefix), serverless, or one instance in the VPC; removed when the gate ends."""
    model, config = requests["model"], requests["config"]
    variant = config["ProductionVariants"][0]
    settings = ({"serverless": True} if "ServerlessConfig" in variant
                else {"instance_type": variant["InstanceType"]})
    out = deploy_accesses(arns, job_name=model["ModelName"], model_data=[], image=model["PrimaryContainer"]["Image"],
                          settings=settings, tags=tags, role_arn=model["ExecutionRoleArn"],
                          vpc=model.get("VpcConfig"))
    source = model["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]["S3Uri"]
    out += s3_read_prefix(arns, "endpoint", source, f"endpoint {model['ModelName']}: base model weights")
    return out
