"""The optional training VPC: private isolated subnets (no internet route), an S3 gateway endpoint, interface
endpoints for the AWS APIs jobs call, one security group for training containers, and flow logs."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.aws.naming import Names
from jobs.config.aws import VpcSettings


class TrainingNetwork(Construct):
    def __init__(self, scope: Construct, id: str, *, names: Names, settings: VpcSettings,
                 flow_logs_bucket: s3.IBucket) -> None:
        super().__init__(scope, id)
        self.vpc = ec2.Vpc(
            self, "Vpc", vpc_name=f"{names.prefix}-{names.env}-training",
            ip_addresses=ec2.IpAddresses.cidr(settings.cidr),
            # Zones from the environment file: synth stays offline (no lookup with credentials).
            availability_zones=settings.availability_zones[:settings.max_azs],
            nat_gateways=0,
            subnet_configuration=[ec2.SubnetConfiguration(name="training", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                                                          cidr_mask=20)],
            gateway_endpoints={"S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)},
        )
        self.vpc.add_flow_log("FlowLogs", destination=ec2.FlowLogDestination.to_s3(flow_logs_bucket, "vpc-flow-logs/"),
                              traffic_type=ec2.FlowLogTrafficType.ALL)
        # Training containers talk to each other (distributed jobs) and, with no internet route, only reach
        # the endpoints below and S3 through the gateway.
        self.security_group = ec2.SecurityGroup(
            self, "TrainingSecurityGroup", vpc=self.vpc, allow_all_outbound=True,
            security_group_name=f"{names.prefix}-{names.env}-training",
            description="ftops training containers - traffic between the instances of a job, egress stays in the VPC")
        self.security_group.add_ingress_rule(self.security_group, ec2.Port.all_traffic(),
                                             "between instances of one training job")
        endpoints_sg = ec2.SecurityGroup(
            self, "EndpointSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
            description="ftops interface endpoints: HTTPS from training containers")
        endpoints_sg.add_ingress_rule(self.security_group, ec2.Port.tcp(443), "HTTPS from training containers")
        for service in settings.interface_endpoints:
            self.vpc.add_interface_endpoint(
                "Endpoint" + "".join(part.capitalize() for part in service.replace("-", ".").split(".")),
                service=ec2.InterfaceVpcEndpointAwsService(service), private_dns_enabled=True,
                security_groups=[endpoints_sg], open=False,
                subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED))
        self.subnets = self.vpc.isolated_subnets

    def arns(self, names: Names) -> dict[str, list[str]]:
        """Subnet and security group ARNs, for the execution role's ENI permissions."""
        return {"subnets": [names.arn("ec2", f"subnet/{subnet.subnet_id}") for subnet in self.subnets],
                "security_groups": [names.arn("ec2", f"security-group/{self.security_group.security_group_id}")]}
