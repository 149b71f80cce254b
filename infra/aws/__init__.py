"""The AWS side of provisioning: CDK constructs (one concern each), the platform stack, and the app builder.

Only `naming` and `outputs` are free of aws_cdk, so that `jobs` (which never imports aws_cdk) can use them.
"""
