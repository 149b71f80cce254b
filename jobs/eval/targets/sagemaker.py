"""SageMaker real-time endpoints through sagemaker-runtime `invoke_endpoint`.

The Hugging Face LLM inference containers (TGI, DJL) accept the Messages API (`{"messages": [...]}`) and
answer in the chat-completion shape; older text-generation containers answer `[{"generated_text": ...}]`.
Both are read. Throttling is retried through the shared Throttle on top of botocore's adaptive retries.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from jobs.errors import CloudError
from jobs.eval.store import Answer
from jobs.eval.targets.base import Generation, Messages, Target, Throttle, content_of_chat_completion

THROTTLE_CODES = {"ThrottlingException", "TooManyRequestsException", "ServiceUnavailable", "InternalFailure"}


def classify(exc: BaseException) -> tuple[bool, bool, float | None]:
    from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        return code in THROTTLE_CODES, code in ("ThrottlingException", "TooManyRequestsException"), None
    return isinstance(exc, BotoConnectionError), False, None


def parse_body(payload: Any) -> str:
    if isinstance(payload, dict) and "choices" in payload:
        return content_of_chat_completion(payload)
    if isinstance(payload, list) and payload and isinstance(payload[0], dict):
        return str(payload[0].get("generated_text", ""))
    if isinstance(payload, dict) and "generated_text" in payload:
        return str(payload["generated_text"])
    raise ValueError("unrecognised endpoint response")


class SageMakerEndpointTarget(Target):
    kind = "sagemaker"

    def __init__(self, runtime_client: Any, endpoint_name: str, *, concurrency: int = 4,
                 throttle: Throttle | None = None, describe_client: Any = None) -> None:
        self.client = runtime_client
        self.endpoint_name = endpoint_name
        self.concurrency = concurrency
        self.throttle = throttle or Throttle()
        self.describe_client = describe_client
        self.model_data: str | None = None
        """The artifact the endpoint serves, once `serves()` asked SageMaker."""

    @property
    def identity(self) -> str:
        # Once looked up, the artifact is part of the answers' key (an endpoint that served a checkpoint before).
        return f"{self.kind}:{self.endpoint_name}" + (f"={self.model_data}" if self.model_data else "")

    def serves(self) -> str | None:
        """The model artifact behind the endpoint: endpoint -> its config's first variant -> the model's data."""
        if self.describe_client is None:
            return None
        if self.model_data is None:
            sm = self.describe_client
            config = sm.describe_endpoint(EndpointName=self.endpoint_name)["EndpointConfigName"]
            model = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]["ModelName"]
            container = sm.describe_model(ModelName=model).get("PrimaryContainer") or {}
            source = (container.get("ModelDataSource") or {}).get("S3DataSource") or {}
            self.model_data = container.get("ModelDataUrl") or source.get("S3Uri") or ""
        return self.model_data

    def answer(self, messages: Messages, generation: Generation) -> Answer:
        body = orjson.dumps({"messages": [dict(m) for m in messages], "max_tokens": generation.max_tokens,
                             "temperature": generation.temperature, "seed": generation.seed})
        started = time.monotonic()
        what = f"endpoint {self.endpoint_name}"
        try:
            response, attempts = self.throttle.call(
                lambda: self.client.invoke_endpoint(EndpointName=self.endpoint_name, ContentType="application/json",
                                                    Accept="application/json", Body=body), classify, what)
        except CloudError:
            raise
        except Exception as exc:  # noqa: BLE001 - botocore errors become one line naming the endpoint
            detail = getattr(exc, "response", {}).get("Error", {}).get("Message") if hasattr(exc, "response") else None
            raise CloudError(f"{what}: {detail or exc}", hint="check the endpoint is InService (`ftops deploy`)") from exc
        raw = response["Body"].read()
        try:
            text = parse_body(orjson.loads(raw))
        except (orjson.JSONDecodeError, ValueError, KeyError, IndexError):
            raise CloudError(f"{what}: unexpected response {raw[:200]!r}",
                             hint="the endpoint must serve the Messages API or text generation") from None
        return Answer(text, (time.monotonic() - started) * 1000, attempts)
