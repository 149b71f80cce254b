"""The training image: the Hugging Face PyTorch training container, looked up offline.

`HF_TRAINING_IMAGE` is the one pin. jobs/training/requirements.txt pins transformers and torch to the versions
inside this image, so the script runs against what the container ships (no pip install at job start).

Rendering must not import the SageMaker SDK (1.4 s and ~100 MB with pandas, for two strings). The URIs come from
`image_uris.json` beside this module: what sagemaker-core's own `image_uris.retrieve` answers for every region it
knows and every instance type in botocore's `TrainingInstanceType`, written by `python -m jobs.render.images` and
keyed by the sagemaker-core version and the pin. When the installed sagemaker-core is another version, or a
region or instance type is not in the file, the SDK is asked (slow, still offline); a test checks the file against
the SDK so it cannot drift.
"""

from __future__ import annotations

import gc
import json
from functools import cache
from importlib import metadata
from pathlib import Path
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
    """Load the image URIs now (a parallel render does so once, before forking its workers): the committed file,
    or the SDK when the file does not fit the installed sagemaker-core."""
    if _cache() is None:
        _image_uris()


CACHE_FILE = Path(__file__).with_name("image_uris.json")


@cache
def _cache() -> dict | None:
    """The committed answers, or None when they are not for the installed sagemaker-core and this pin."""
    try:
        data = json.loads(CACHE_FILE.read_text())
        installed = metadata.version("sagemaker-core")
    except (OSError, ValueError, metadata.PackageNotFoundError):
        return None
    return data if data.get("sagemaker_core") == installed and data.get("image") == HF_TRAINING_IMAGE else None


def _cached_training(region: str, instance_type: str) -> str | None:
    data = _cache()
    if data is None:
        return None
    kind = data["training"]["instance_types"].get(instance_type)
    if kind is None:
        return None
    if kind != "ok":
        _refuse(region, instance_type, kind)
    return data["training"]["regions"].get(region)


def _refuse(region: str, instance_type: str, reason: str):
    raise ConfigError(
        f"no Hugging Face training image (transformers {HF_TRAINING_IMAGE['transformers']}) for {instance_type} "
        f"in {region}: {reason}", field="compute.instance_type",
        hint="pick a GPU instance type, or set compute.image_uri to your own image")


@cache
def training_image_uri(region: str, instance_type: str) -> str:
    """The image URI for `region` and `instance_type` (GPU or CPU variant), without any network call."""
    cached = _cached_training(region, instance_type)
    if cached is not None:
        return cached
    return _sdk_training_image_uri(region, instance_type)


def _sdk_training_image_uri(region: str, instance_type: str) -> str:
    try:
        return _sdk_lookup(region, instance_type)
    except ValueError as exc:
        _refuse(region, instance_type, str(exc))


def _sdk_lookup(region: str, instance_type: str) -> str:
    """sagemaker-core's answer; its ValueError says why there is none."""
    return _image_uris().retrieve(
        framework="huggingface", region=region, version=HF_TRAINING_IMAGE["transformers"],
        base_framework_version=f"pytorch{HF_TRAINING_IMAGE['pytorch']}",
        py_version=HF_TRAINING_IMAGE["py_version"], instance_type=instance_type, image_scope="training")


@cache
def profiler_rule_image_uri(region: str) -> str:
    """The Debugger rule evaluator image that runs the ProfilerReport rule."""
    data = _cache()
    if data is not None and region in data["debugger"]:
        return data["debugger"][region]
    return _image_uris().retrieve("debugger", region=region)


# --- the committed answers ------------------------------------------------------------------------------------

def sdk_answers() -> dict:
    """Ask sagemaker-core for every region it has a registry for and every training instance type (slow)."""
    import botocore.session

    image_uris = _image_uris()
    from sagemaker.core.image_uris import config_for_framework

    hf = config_for_framework("huggingface")["training"]["versions"][HF_TRAINING_IMAGE["transformers"]]
    regions = sorted({r for cfg in hf.values() if isinstance(cfg, dict) for r in cfg.get("registries", {})})
    debugger_regions = sorted(config_for_framework("debugger")["versions"]["latest"]["registries"])
    types = botocore.session.get_session().get_service_model("sagemaker").shape_for("TrainingInstanceType").enum
    kinds, uris = {}, {}
    for instance_type in types:
        for region in regions:
            try:
                uri = _sdk_lookup(region, instance_type)
            except ValueError as exc:  # the same for every region (an unsupported processor or framework)
                kinds[instance_type] = str(exc)
                break
            kinds[instance_type] = "ok"
            if uris.setdefault(region, uri) != uri:
                raise AssertionError(f"{region}: the URI depends on the instance type ({uri} vs {uris[region]})")
    return {"sagemaker_core": metadata.version("sagemaker-core"), "image": HF_TRAINING_IMAGE,
            "training": {"regions": uris, "instance_types": dict(sorted(kinds.items()))},
            "debugger": {r: image_uris.retrieve("debugger", region=r) for r in debugger_regions}}


if __name__ == "__main__":  # python -m jobs.render.images: rewrite image_uris.json from the installed SDK
    from jobs.fsutil import atomic_write

    atomic_write(CACHE_FILE, json.dumps(sdk_answers(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {CACHE_FILE}")
