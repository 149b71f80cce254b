"""The training image: the Hugging Face PyTorch training container, looked up offline in sagemaker-core.

`HF_TRAINING_IMAGE` is the one pin. jobs/training/requirements.txt pins transformers and torch to the versions
inside this image, so the script runs against what the container ships (no pip install at job start).
"""

from __future__ import annotations

from functools import cache

from jobs.errors import ConfigError

HF_TRAINING_IMAGE = {
    "transformers": "5.3.0",
    "pytorch": "2.9.0",
    "py_version": "py312",
}
"""Newest Hugging Face training image sagemaker-core knows (checked with sagemaker-core's image_uri_config)."""


@cache
def training_image_uri(region: str, instance_type: str) -> str:
    """The image URI for `region` and `instance_type` (GPU or CPU variant), without any network call."""
    from sagemaker.core import image_uris

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
    from sagemaker.core import image_uris

    return image_uris.retrieve("debugger", region=region)
