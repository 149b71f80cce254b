"""Azure OpenAI deployments through the openai SDK: one request at a time per worker, or the Batch API.

Per request: bounded concurrency (the runner's pool), the SDK's own retries off, so that a 429's
Retry-After pauses every worker at once (see `Throttle`). Batch: upload one JSONL file (purpose `batch`),
create the batch, poll until it ends, read the output file; the batch id is stored before polling so an
interrupted evaluation collects the same batch instead of paying for a second one.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from jobs.errors import CloudError, ConfigError
from jobs.eval.store import Answer, AnswerStore
from jobs.eval.targets.base import (Generation, Messages, Request, Target, Throttle, content_of_chat_completion,
                                    retry_after_seconds)

API_VERSION = "2024-10-21"
"""GA data-plane version with chat completions, files and the Batch API."""
BATCH_DONE = {"completed", "failed", "expired", "cancelled"}


def make_client(endpoint: str, token_provider: Callable[[], str], api_version: str = API_VERSION, *, timeout: float = 120.0):
    """An AzureOpenAI client with Entra ID tokens (no keys) and the SDK's retries off (the Throttle retries)."""
    from openai import AzureOpenAI

    return AzureOpenAI(azure_endpoint=endpoint, api_version=api_version, azure_ad_token_provider=token_provider,
                       max_retries=0, timeout=timeout)


def classify(exc: BaseException) -> tuple[bool, bool, float | None]:
    import openai

    if isinstance(exc, openai.RateLimitError):
        return True, True, retry_after_seconds(exc.response.headers)
    if isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError)):
        return True, False, None
    if isinstance(exc, openai.APIStatusError) and (exc.status_code >= 500 or exc.status_code in (408, 409)):
        return True, False, retry_after_seconds(exc.response.headers)
    return False, False, None


def _cloud_error(what: str, exc: Exception) -> CloudError:
    import openai

    if isinstance(exc, openai.NotFoundError):
        return CloudError(f"{what}: not found ({exc.message})", hint="deploy the model first (`ftops deploy`)")
    if isinstance(exc, openai.APIStatusError):
        return CloudError(f"{what}: HTTP {exc.status_code} ({exc.message})")
    return CloudError(f"{what}: {exc}")


class AzureOpenAITarget(Target):
    kind = "azure-openai"

    def __init__(self, client: Any, deployment: str, *, concurrency: int = 8, throttle: Throttle | None = None,
                 served: tuple[str, str | None] | None = None, batch: bool = False, poll_interval_s: float = 5.0,
                 batch_timeout_s: float = 86_400.0, max_batch_requests: int = 50_000) -> None:
        self.client = client
        self.deployment = deployment
        self.served = served
        """(model name, version) the deployment serves, as ARM reports it; None when not looked up."""
        self.concurrency = concurrency
        self.throttle = throttle or Throttle()
        self.supports_batch = batch
        self.poll_interval_s = poll_interval_s
        self.batch_timeout_s = batch_timeout_s
        self.max_batch_requests = max_batch_requests
        self.requests_sent = 0

    @property
    def identity(self) -> str:
        # The model behind the deployment is part of the answers' key: a deployment that served a checkpoint
        # yesterday and the final model today must not reuse yesterday's answers.
        if self.served is None:
            return f"{self.kind}:{self.deployment}"
        name, version = self.served
        return f"{self.kind}:{self.deployment}={name}" + (f"@{version}" if version else "")

    def serves(self) -> str | None:
        return self.served[0] if self.served else None

    def _body(self, messages: Messages, generation: Generation) -> dict[str, Any]:
        return {"model": self.deployment, "messages": [dict(m) for m in messages],
                "temperature": generation.temperature, "max_tokens": generation.max_tokens, "seed": generation.seed}

    def answer(self, messages: Messages, generation: Generation) -> Answer:
        body = self._body(messages, generation)
        started = time.monotonic()

        def send():
            self.requests_sent += 1
            return self.client.chat.completions.create(**body)

        try:
            completion, attempts = self.throttle.call(send, classify, f"deployment {self.deployment}")
        except CloudError:
            raise
        except Exception as exc:  # noqa: BLE001 - SDK errors become one line naming the deployment
            raise _cloud_error(f"deployment {self.deployment}", exc) from exc
        return Answer(content_of_chat_completion(completion), (time.monotonic() - started) * 1000, attempts)

    # --- the Batch API ----------------------------------------------------------------------------

    def answer_batch(self, requests: Sequence[Request], generation: Generation, store: AnswerStore,
                     variant_of: Callable[[str], tuple[str, str]], on_answer: Callable[[], None]) -> None:
        wanted = {r.custom_id: r for r in requests}
        # First collect batches a previous (interrupted) run already submitted.
        for batch_id, ids in store.pending_batches(self.identity).items():
            self._collect(batch_id, store, variant_of, on_answer)
        missing = [r for r in requests if (self.identity, *variant_of(r.custom_id)) not in store]
        for start in range(0, len(missing), self.max_batch_requests):
            chunk = missing[start:start + self.max_batch_requests]
            batch_id = self._submit(chunk, generation)
            store.record_batch(self.identity, batch_id, [r.custom_id for r in chunk])
            self._collect(batch_id, store, variant_of, on_answer)
        # Requests the batch reported as failed are asked one at a time (few, by construction).
        for custom_id, request in wanted.items():
            if (self.identity, *variant_of(custom_id)) not in store:
                example_id, variant = variant_of(custom_id)
                if store.put((self.identity, example_id, variant), self.answer(request.messages, generation)):
                    on_answer()

    def _submit(self, chunk: Sequence[Request], generation: Generation) -> str:
        lines = b"".join(orjson.dumps({"custom_id": r.custom_id, "method": "POST", "url": "/chat/completions",
                                       "body": self._body(r.messages, generation)}) + b"\n" for r in chunk)
        what = f"batch for deployment {self.deployment}"
        try:
            uploaded, _ = self.throttle.call(
                lambda: self.client.files.create(file=("eval-batch.jsonl", io.BytesIO(lines)), purpose="batch"),
                classify, what)
            batch, _ = self.throttle.call(
                lambda: self.client.batches.create(input_file_id=uploaded.id, endpoint="/chat/completions",
                                                   completion_window="24h"), classify, what)
        except CloudError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _cloud_error(what, exc) from exc
        return batch.id

    def _collect(self, batch_id: str, store: AnswerStore, variant_of: Callable[[str], tuple[str, str]],
                 on_answer: Callable[[], None]) -> None:
        deadline = time.monotonic() + self.batch_timeout_s
        what = f"batch {batch_id}"
        while True:
            batch, _ = self.throttle.call(lambda: self.client.batches.retrieve(batch_id), classify, what)
            if batch.status in BATCH_DONE:
                break
            if time.monotonic() > deadline:
                raise CloudError(f"{what} is still {batch.status} after {self.batch_timeout_s:.0f}s",
                                 hint="run the evaluation again later: it resumes this batch")
            time.sleep(self.poll_interval_s)
        if batch.output_file_id:
            content, _ = self.throttle.call(lambda: self.client.files.content(batch.output_file_id), classify, what)
            for line in content.read().splitlines():
                if not line.strip():
                    continue
                record = orjson.loads(line)
                response = record.get("response") or {}
                if record.get("error") or response.get("status_code", 200) >= 400:
                    continue  # asked again one at a time by answer_batch
                example_id, variant = variant_of(record["custom_id"])
                if store.put((self.identity, example_id, variant),
                             Answer(content_of_chat_completion(response.get("body") or {}), 0.0, 1)):
                    on_answer()
        elif batch.status != "completed":
            errors = getattr(batch, "errors", None)
            detail = "; ".join(e.message for e in (errors.data or [])) if errors and errors.data else batch.status
            store.finish_batch(self.identity, batch_id)
            raise CloudError(f"{what} ended {batch.status}: {detail}",
                             hint="fix the cause and run the evaluation again (finished answers are kept)")
        store.finish_batch(self.identity, batch_id)


BATCH_SKUS = {"GlobalBatch", "DataZoneBatch"}


def served_model(found: Any) -> tuple[str, str | None]:
    """(model name, version) an ARM deployment serves."""
    model = found.properties.model if found.properties else None
    return (getattr(model, "name", None) or "", getattr(model, "version", None) or None)


def check_batch_deployment(env: Any, deployment: str, found: Any = None) -> None:
    """Refuse `--batch` where Azure's Batch API cannot serve: it does not support fine-tuned models and needs a
    base model deployed with a batch SKU (GlobalBatch / DataZoneBatch). Read from ARM before anything is sent."""
    from jobs.config.resolved import resolved_azure
    from jobs.providers.azure_openai import arm_deployment

    found = found if found is not None else arm_deployment(env, deployment)
    if found is None:
        raise ConfigError(f"no deployment {deployment!r} on {resolved_azure(env).openai_account}", field="--batch",
                          hint="deploy it first, or evaluate without --batch")
    model = served_model(found)[0]
    if is_fine_tuned(model):
        raise ConfigError(f"deployment {deployment!r} serves the fine-tuned model {model}: the Azure OpenAI Batch "
                          "API does not support fine-tuned models", field="--batch",
                          hint="evaluate without --batch (per-request calls); Batch needs a GlobalBatch deployment "
                               "of a base model")
    sku = found.sku.name if found.sku else None
    if sku not in BATCH_SKUS:
        raise ConfigError(f"deployment {deployment!r} has SKU {sku}; the Batch API serves only "
                          f"{'/'.join(sorted(BATCH_SKUS))} deployments", field="--batch",
                          hint="deploy the base model as GlobalBatch, or drop --batch")


def is_fine_tuned(model: str) -> bool:
    """Azure names fine-tuned models `<base>.ft-<id>[-suffix]` and checkpoints `ftchkpt-...` (deployed by id)."""
    return ".ft-" in model or model.startswith(("ftchkpt-", "ftckpt"))
