"""`ftops deploy JOB --env ENV --gitops DIR`: the fine-tuned model's Azure Service Operator `Deployment`,
written for a reviewed commit once the model exists (Argo CD / Flux then apply it through ASO).

The manifest goes to `DIR/<environment>/<deployment>.aso.yaml`. It is produced from the same checked
deployment `ftops deploy` would PUT through ARM, so it never carries a placeholder model. A file already
there that does not look like an ftops-written ASO Deployment is refused rather than overwritten.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from jobs.errors import ConfigError
from jobs.fsutil import atomic_write, make_dirs

TEMPLATE = "azure-openai/aso-deployment.yaml.j2"


def render_manifest(planned: dict[str, Any]) -> str:
    from jobs.render.templating import environment

    text = environment().get_template(TEMPLATE).render(d=planned)
    document = yaml.safe_load(text)  # a template regression must fail here, not at the cluster
    if document.get("spec", {}).get("properties", {}).get("model", {}).get("name") != planned["model"]:
        raise AssertionError("the ASO manifest lost its model")
    return text.rstrip() + "\n"


def write_manifest(planned: dict[str, Any], directory: Path) -> Path:
    path = Path(directory).expanduser().resolve() / planned["environment"] / f"{planned['name']}.aso.yaml"
    if path.exists():
        try:
            current = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError):
            current = {}
        annotations = (current.get("metadata") or {}).get("annotations") or {} if isinstance(current, dict) else {}
        if not isinstance(current, dict) or current.get("kind") != "Deployment" or \
                "ftops.dev/idempotency-key" not in annotations:
            raise ConfigError("exists and is not an ASO Deployment written by ftops; not overwriting it",
                              source=path, hint="move it away or choose another --gitops directory")
    make_dirs(path.parent, field="--gitops")  # a file in the way is one line, not a traceback
    atomic_write(path, render_manifest(planned))
    return path
