"""Observability and cost guards: the training log group, job state-change notifications, and the budget."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.aws.naming import Names
from jobs.config.aws import BudgetSettings

TERMINAL_STATES = ["Completed", "Failed", "Stopped"]


class Observability(Construct):
    def __init__(self, scope: Construct, id: str, *, names: Names, key: kms.IKey, removal_policy: RemovalPolicy,
                 retention_days: int, emails: list[str], budget: BudgetSettings) -> None:
        super().__init__(scope, id)
        self.log_group = logs.LogGroup(
            self, "TrainingLogs", log_group_name=names.log_group, retention=logs.RetentionDays.INFINITE,
            encryption_key=key, removal_policy=removal_policy)
        # RetentionDays is a named enum in Python; the environment model already checked the number of days.
        self.log_group.node.default_child.retention_in_days = retention_days
        self.topic = sns.Topic(self, "TrainingEvents", topic_name=names.topic, master_key=key, enforce_ssl=True,
                               display_name=f"ftops {names.env} training events")
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

        self.rule = events.Rule(
            self, "TrainingJobStateChange", rule_name=f"{names.prefix}-{names.env}-training-job-state",
            description="SageMaker training jobs that completed, failed or stopped",
            event_pattern=events.EventPattern(source=["aws.sagemaker"],
                                              detail_type=["SageMaker Training Job State Change"],
                                              detail={"TrainingJobStatus": TERMINAL_STATES}),
            targets=[targets.SnsTopic(self.topic)])

        # AWS Budgets publishes to the (encrypted) topic as a service principal.
        self.topic.grant_publish(iam.ServicePrincipal("budgets.amazonaws.com"))
        subscribers = [budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=self.topic.topic_arn)]
        subscribers += [budgets.CfnBudget.SubscriberProperty(subscription_type="EMAIL", address=e) for e in emails]
        alerts = [("ACTUAL", threshold) for threshold in budget.alert_thresholds_percent] + [("FORECASTED", 100)]
        self.budget = budgets.CfnBudget(
            self, "MonthlyBudget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=names.budget, budget_type="COST", time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=budget.monthly_limit_usd, unit="USD")),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        notification_type=kind, comparison_operator="GREATER_THAN", threshold=threshold,
                        threshold_type="PERCENTAGE"),
                    subscribers=subscribers)
                for kind, threshold in alerts])
