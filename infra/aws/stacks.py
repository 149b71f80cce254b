"""The platform stack: one per environment, wiring the constructs together and exporting what rendering needs."""

from __future__ import annotations

from aws_cdk import BootstraplessSynthesizer, CfnOutput, DefaultStackSynthesizer, Environment, RemovalPolicy, Stack, Tags
from constructs import Construct

from infra.aws.buckets import PlatformBuckets
from infra.aws.execution_role import ExecutionRole
from infra.aws.endpoint_role import EndpointRole
from infra.aws.kms_key import PlatformKey
from infra.aws.naming import Names
from infra.aws.observability import Observability
from infra.aws.outputs import NO_ITEMS, output_key
from infra.aws.pipeline_role import PipelineRole
from infra.aws.promotion import grant_promotion
from infra.aws.training_defaults import TrainingDefaultsParameter
from jobs.access.environment import promotion_sources
from jobs.access.registry import promotion_targets
from jobs.config.environment import Environment as FtopsEnvironment


class PlatformStack(Stack):
    @property
    def availability_zones(self) -> list[str]:
        return self._zones

    def __init__(self, scope: Construct, *, env: FtopsEnvironment) -> None:
        aws = env.require_aws()
        names = Names.of(env)
        synthesizer = (BootstraplessSynthesizer() if aws.synthesizer == "bootstrapless"
                       else DefaultStackSynthesizer(generate_bootstrap_version_rule=True))
        production = aws.production or env.name == "prod"
        super().__init__(
            scope, names.stack, stack_name=names.stack, synthesizer=synthesizer,
            env=Environment(account=aws.account, region=aws.region),
            description=f"ftops {env.name}: fine-tuning platform (KMS, S3, IAM, training defaults, alerts)",
            termination_protection=production,
        )
        # Every construct asking the stack for its zones (interface endpoints do) gets the environment file's,
        # instead of a context lookup that needs credentials.
        self._zones = list(aws.vpc.availability_zones[:aws.vpc.max_azs]) if aws.vpc.enabled else []
        self.names = names
        self.env_settings = aws
        self.dataset_prefix = env.data.s3_prefix
        self.production = production
        removal = RemovalPolicy.RETAIN if aws.removal_policy == "retain" else RemovalPolicy.DESTROY
        training = aws.training

        self.key = PlatformKey(self, "Key", names=names, removal_policy=removal).key
        self.buckets = PlatformBuckets(
            self, "Buckets", names=names, key=self.key, removal_policy=removal,
            checkpoint_prefix=training.checkpoint_prefix, checkpoint_expiry_days=aws.checkpoint_expiry_days,
            noncurrent_version_expiry_days=aws.noncurrent_version_expiry_days)
        self.network = None
        if aws.vpc.enabled:
            # aws_ec2 is the largest CDK module: imported only when an environment has a VPC.
            from infra.aws.network import TrainingNetwork

            self.network = TrainingNetwork(self, "Network", names=names, settings=aws.vpc,
                                           flow_logs_bucket=self.buckets.access_logs)
        images = list(aws.training_image_repositories)
        if training.profiler:
            # The ProfilerReport rule runs from a regional Debugger image (sagemaker-core's offline table).
            from jobs.render.images import profiler_rule_image_uri

            images.append(profiler_rule_image_uri(aws.region))
        vpc_arns = self.network.arns(names) if self.network else None
        self.execution_role = ExecutionRole(
            self, "ExecutionRole", names=names, key=self.key, dataset_prefix=env.data.s3_prefix,
            checkpoint_prefix=training.checkpoint_prefix, image_repositories=images,
            vpc_arns=vpc_arns).role
        self.endpoint_role = EndpointRole(
            self, "EndpointRole", names=names, key=self.key, image_repositories=aws.inference_image_repositories,
            vpc_arns=vpc_arns).role
        # Promotion across environments: this environment's targets may read here, its sources are read from.
        targets = [Names.of(target) for target in promotion_targets(env)]
        sources = self.promotion_sources = [Names.of(other) for other in promotion_sources(env)]
        grant_promotion(names, self.buckets.artifacts, self.key, targets)
        # Tokens fetched once: every attribute read from Python is a jsii round trip.
        key_arn, execution_role_arn = self.key.key_arn, self.execution_role.role_arn
        subnet_ids = [subnet.subnet_id for subnet in self.network.subnets] if self.network else []
        security_group_ids = [self.network.security_group.security_group_id] if self.network else []
        self.pipeline = PipelineRole(
            self, "PipelineRole", names=names, key=self.key, execution_role=self.execution_role,
            endpoint_role=self.endpoint_role, promotion_sources=sources, promotion_targets=targets,
            allowed_instance_types=training.allowed_instance_types,
            require_isolation=training.network_isolation and training.inter_container_encryption,
            dataset_prefix=env.data.s3_prefix, subnet_ids=subnet_ids, security_group_ids=security_group_ids,
            github=env.github)
        self.pipeline_role = self.pipeline.role
        self.training_defaults = TrainingDefaultsParameter(
            self, "TrainingDefaults", names=names, defaults=training, kms_key_arn=key_arn,
            execution_role_arn=execution_role_arn, subnet_ids=subnet_ids,
            security_group_ids=security_group_ids, tags=env.all_tags).parameter
        self.observability = Observability(
            self, "Observability", names=names, key=self.key, removal_policy=removal,
            retention_days=aws.log_retention_days, emails=aws.notification_emails, budget=aws.budget)

        # moto's CloudFormation mis-reads the tags of KMS keys (expects TagKey/TagValue) and SSM parameters
        # (expects a list), so the emulated environment leaves those two untagged; real environments tag everything.
        untagged = ["AWS::KMS::Key", "AWS::SSM::Parameter"] if env.emulated else []
        tags = Tags.of(self)
        for key, value in env.all_tags.items():
            tags.add(key, value, exclude_resource_types=untagged)

        # One output per ResolvedAws field: `ftops infra outputs` turns them into the resolved values.
        values = {
            "account": self.account, "region": self.region,
            "datasets_bucket": self.buckets.datasets.bucket_name,
            "output_bucket": self.buckets.artifacts.bucket_name,
            "checkpoints_bucket": self.buckets.checkpoints.bucket_name,
            "kms_key_arn": key_arn,
            "execution_role_arn": execution_role_arn,
            "pipeline_role_arn": self.pipeline_role.role_arn,
            "endpoint_role_arn": self.endpoint_role.role_arn,
            "training_defaults_parameter": self.training_defaults.parameter_name,
            "log_group_name": self.observability.log_group.log_group_name,
            "notifications_topic_arn": self.observability.topic.topic_arn,
            "subnet_ids": ",".join(subnet_ids) if subnet_ids else NO_ITEMS,
            "security_group_ids": ",".join(security_group_ids) if security_group_ids else NO_ITEMS,
        }
        for field, value in values.items():
            CfnOutput(self, output_key(field), value=value, description=f"ResolvedAws.{field}")
        CfnOutput(self, "AccessLogsBucket", value=self.buckets.access_logs.bucket_name,
                  description="S3 server access logs (and VPC flow logs) of this environment")
