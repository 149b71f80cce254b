"""The training image: the Hugging Face PyTorch training container, looked up offline in sagemaker-core.

`HF_TRAINING_IMAGE` is the one pin. jobs/training/requirements.txt pins transformers and torch to the versions
inside this image, so the script runs against what the container ships (no pip install at job start).
"""

from __future__ import annotations

import gc
from functools import cache
from types import ModuleType

from jobs.errors import ConfigError

HF_TRAINING_IMAGE = {
    "transformers": "5.3.0",
    "pytorch": "2.9.0",
    "py_version": "py312",
}
"""Newest Hugging Face training image sagemaker-core knows (checked with sagemaker-core's image_uri_config)."""


@cache
def _image_uris() -> ModuleType:
    """sagemaker-core's image registry, imported once per process.

    The import (pandas, numpy, boto3 and the SDK's models) leaves ~200k objects that live as long as the
    process; every full garbage collection during a render would walk them again (~0.1 s each, about one per
    environment rendered). `gc.freeze()` moves what is alive now out of the collector's sight; objects are still
    freed by reference counting, only cycles among them would wait for the process to end.
    """
    from sagemaker.core import image_uris

    gc.freeze()
    return image_uris


def preload_registry() -> None:
    """Import the registry now (a parallel render does so once, before forking its workers)."""
    _image_uris()


@cache
def training_image_uri(region: str, instance_type: str) -> str:
    """The image URI for `region` and `instance_type` (GPU or CPU variant), without any network call."""
    image_uris = _image_uris()
    try:
        return image_uris.retrieve(
            framework="huggingface", region=region, version=HF_TRAINING_IMAGE["transformers"],
            base_framework_version=f"pytorch{HF_TRAINING_IMAGE['pytorch']}",
            py_version=HF_TRAINING_IMAGE["py_version"], instance_type=instance_type, image_scope="training")
    except ValueError as exc:
        raise ConfigError(
            f"no Hugging Face training image (transformers {HF_TRAINING_IMAGE['transformers']}) for {instance_type} "
            f"in {region}: {exc}", field="compute.instance_type",
            hint="pick a GPU instance type, or set compute.image_uri to your own image") from None


@cache
def profiler_rule_image_uri(region: str) -> str:
    """The Debugger rule evaluator image that runs the ProfilerReport rule."""
    return _image_uris().retrieve("debugger", region=region)
