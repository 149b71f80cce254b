"""Start the CDK's jsii kernel early, on a thread, while the app reads the environment files."""

from __future__ import annotations

import contextlib
import threading


def start_cdk_in_background() -> threading.Thread:
    """Import aws_cdk and cdk_nag on a thread while the caller imports `jobs` and reads the environment files.

    The imports start the jsii kernel (a node process) and load aws-cdk-lib and cdk-nag into it: about half a
    second in which Python mostly waits for node, so the caller's own imports run meanwhile. The caller needs
    no join: its own `import aws_cdk` waits until this thread's import of it is complete (Python's module
    locks), and one that failed here is raised again, with its traceback, by the caller's import. This module
    and the thread import only CDK packages, never `jobs`, so neither thread waits on a module the other is
    importing while holding one it needs.
    """
    def load() -> None:
        with contextlib.suppress(Exception):  # the caller's own import of the module reports it
            import aws_cdk  # noqa: F401
            import cdk_nag  # noqa: F401

    thread = threading.Thread(target=load, name="cdk-kernel-start", daemon=True)
    thread.start()
    return thread
