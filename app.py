"""The CDK app: a platform stack per environment under environments/ (`cdk synth -c env=NAME` picks one).

Bad environment files fail here with one line naming file, line and field, before anything is synthesized.
"""

from __future__ import annotations

import json
import os
import sys


def _selected() -> str | None:
    # The CDK CLI passes `-c key=value` in CDK_CONTEXT_JSON; read it before importing aws_cdk so bad input fails fast.
    context = json.loads(os.environ.get("CDK_CONTEXT_JSON") or "{}")
    return context.get("env") or None


def main() -> int:
    # Everything is imported on this thread: importing aws_cdk on a second thread while this one imported
    # raced Python's module locks ("partially initialized module 'typing'", issue 12). Slower, never flaky.
    from infra.aws.app import build_app, select_environments
    from jobs.errors import FtopsError

    try:
        envs = select_environments(_selected())
    except FtopsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    try:
        build_app(envs).synth()
    except RuntimeError as exc:
        # cdk-nag / CloudFormation validation: the report is the message; a Python traceback adds nothing.
        if "ValidationFailed" not in str(exc):
            raise
        print(str(exc).removeprefix("ValidationFailed: "), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
