"""Providers (SageMaker, Azure OpenAI) behind one interface; `get(name)` returns the registered instance."""

from __future__ import annotations

import importlib

from jobs.errors import FtopsError
from jobs.providers.base import Provider

# Imported on first use: each provider pulls in its cloud SDK.
_MODULES = {"sagemaker": "jobs.providers.sagemaker", "sagemaker-tuning": "jobs.providers.sagemaker_tuning",
            "azure-openai": "jobs.providers.azure_openai"}
_REGISTRY: dict[str, Provider] = {}


def register(cls: type[Provider]) -> type[Provider]:
    """Class decorator: providers are stateless, so one instance serves every call."""
    _REGISTRY[cls.name] = cls()
    return cls


def names() -> list[str]:
    return list(_MODULES)


def get(name: str) -> Provider:
    if name not in _REGISTRY:
        module = _MODULES.get(name)
        if module is None:
            raise FtopsError(f"unknown provider {name!r}", field="provider", hint=f"one of: {', '.join(_MODULES)}")
        importlib.import_module(module)
    return _REGISTRY[name]
