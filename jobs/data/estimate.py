"""Training cost estimates from a prepared dataset: Azure OpenAI tokens, SageMaker instance hours.

`estimate_cost(manifest, ...)` is the library entry; rendering calls it for each job's cost ceiling.
Prices come from jobs/reference/prices.yaml (source and date inside), overridden by the environment's
`data.price_overrides`.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from jobs import paths
from jobs.data.manifest import Manifest
from jobs.errors import ConfigError, FtopsError
from jobs.yamlio import load_shipped

if TYPE_CHECKING:
    from jobs.config.environment import Environment

Provider = Literal["azure-openai", "sagemaker"]
TrainingType = Literal["Standard", "GlobalStandard", "Developer"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AzureModelPrice(_Strict):
    training_per_1m_tokens: float = Field(ge=0)
    hosting_per_hour: float = Field(ge=0)


class EpochsRule(_Strict):
    target_epochs: int
    min_target_examples: int
    max_target_examples: int
    min_epochs: int
    max_epochs: int

    def epochs(self, examples: int) -> int:
        """The provider's default ("auto") epochs for a training file of `examples` examples."""
        if examples <= 0:
            return self.target_epochs
        if examples * self.target_epochs < self.min_target_examples:
            return min(self.max_epochs, self.min_target_examples // examples)
        if examples * self.target_epochs > self.max_target_examples:
            return max(self.min_epochs, self.max_target_examples // examples)
        return self.target_epochs


class AzurePrices(_Strict):
    source: str
    models: dict[str, AzureModelPrice]
    training_type_factor: dict[TrainingType, float]
    epochs_rule: EpochsRule


class InstancePrice(_Strict):
    on_demand_per_hour: float = Field(ge=0)
    spot_per_hour: float = Field(ge=0)
    tokens_per_second: float = Field(gt=0)


class SageMakerPrices(_Strict):
    source: str
    region: str
    default_epochs: int
    startup_hours: float
    instances: dict[str, InstancePrice]


class PriceFile(_Strict):
    version: Literal[1]
    currency: str
    retrieved: date
    azure_openai: AzurePrices
    sagemaker: SageMakerPrices


@cache
def price_file() -> PriceFile:
    path = paths.data_file("prices.yaml")
    try:
        return PriceFile.model_validate(load_shipped(path))
    except ValueError as exc:
        raise ConfigError(f"invalid price file: {str(exc).splitlines()[0]}", source=path) from None


def apply_overrides(prices: PriceFile, overrides: dict[str, float], source: Path | str | None = None) -> PriceFile:
    """Prices with `provider/item/field` overrides applied; an override naming nothing known is an error."""
    data = prices.model_dump()
    sections = {"azure-openai": data["azure_openai"]["models"], "sagemaker": data["sagemaker"]["instances"]}
    for key, value in overrides.items():
        parts = key.split("/")
        target = sections.get(parts[0], {}).get(parts[1], {}) if len(parts) == 3 else {}
        if len(parts) != 3 or parts[2] not in target:
            raise ConfigError(f"price override {key!r} names no price in jobs/reference/prices.yaml", source=source,
                              field="data.price_overrides",
                              hint="use azure-openai/<model>/training_per_1m_tokens or "
                                   "sagemaker/<instance>/on_demand_per_hour|spot_per_hour|tokens_per_second")
        target[parts[2]] = value
    return PriceFile.model_validate(data)


class Estimate(BaseModel):
    """What a training run on this dataset costs. `cost_usd` is the figure to budget (spot when spot is on)."""

    model_config = ConfigDict(extra="forbid")

    provider: Provider
    model: str | None
    dataset_id: str
    train_examples: int
    train_tokens: int
    """Tokens of the training split; for Azure each example counts at most the model's per-example limit."""
    epochs: int
    epochs_source: str
    """`given` or the default rule that chose it."""
    billed_tokens: int | None = None
    price_per_1m_tokens: float | None = None
    training_type: str | None = None
    instance_type: str | None = None
    tokens_per_second: float | None = None
    hours: float | None = None
    on_demand_usd: float | None = None
    spot_usd: float | None = None
    spot: bool = False
    cost_usd: float
    currency: str = "USD"
    price_source: str
    prices_retrieved: date
    overridden: list[str] = []


def estimate_cost(manifest: Manifest, *, provider: Provider = "azure-openai", model: str | None = None,
                  epochs: int | None = None, instance_type: str | None = None, spot: bool = False,
                  training_type: TrainingType = "Standard", env: Environment | None = None,
                  manifest_dir: Path | None = None) -> Estimate:
    """Cost of training on `manifest`'s train split.

    azure-openai: billed tokens = sum over examples of min(limit, tokens) x epochs (epochs default to the
    provider's auto rule), times the model's price for `training_type`. sagemaker: hours =
    tokens x epochs / the instance's assumed tokens_per_second + startup, priced on demand and at spot.
    `env` applies its price overrides; `manifest_dir` lets the Azure path recount examples over the limit or
    counted with another tokenizer (without it the manifest's totals are used, which can only overstate).
    """
    if "train" not in manifest.files:
        raise FtopsError("the manifest has no train split", hint="re-run `ftops data prepare`")
    if epochs is not None and epochs < 1:
        raise FtopsError(f"epochs must be at least 1, not {epochs}", field="--epochs")
    overrides = dict(env.data.price_overrides) if env is not None else {}
    source = None
    if env is not None:
        from jobs.config.environment import environment_file

        source = environment_file(env.name)
    prices = apply_overrides(price_file(), overrides, source)
    if provider == "azure-openai":
        return _azure(manifest, prices, model, epochs, training_type, manifest_dir, sorted(overrides))
    return _sagemaker(manifest, prices, model, epochs, instance_type, spot, sorted(overrides))


def _azure(manifest: Manifest, prices: PriceFile, model: str | None, epochs: int | None,
           training_type: TrainingType, manifest_dir: Path | None, overridden: list[str]) -> Estimate:
    from jobs.data.tokens import DEFAULT_MODEL
    from jobs.reference import azure_models

    found = azure_models().find(model or DEFAULT_MODEL)
    if found is None:
        raise FtopsError(f"unknown Azure OpenAI model {model!r}", field="--model",
                         hint=f"use one of {', '.join(azure_models().models)}")
    key, spec = found
    price = prices.azure_openai.models.get(spec.base)
    if price is None:
        raise FtopsError(f"no training price for {spec.base} in jobs/reference/prices.yaml", field="--model",
                         hint=f"add it, or set data.price_overrides 'azure-openai/{spec.base}/training_per_1m_tokens'")
    train = manifest.files["train"]
    tokens = train.tokens
    needs_recount = train.max_example_tokens > spec.max_example_tokens or manifest.tokenizer != spec.tokenizer
    if needs_recount and manifest_dir is not None:
        tokens = _capped_tokens(manifest_dir / train.path, spec.tokenizer, spec.max_example_tokens, manifest.format)
    rule = prices.azure_openai.epochs_rule
    chosen = epochs or rule.epochs(train.examples)
    per_million = price.training_per_1m_tokens * prices.azure_openai.training_type_factor[training_type]
    billed = tokens * chosen
    cost = round(billed / 1_000_000 * per_million, 2)
    return Estimate(provider="azure-openai", model=key, dataset_id=manifest.dataset_id, train_examples=train.examples,
                    train_tokens=tokens, epochs=chosen,
                    epochs_source="given" if epochs else f"auto: the default rule for {train.examples} examples",
                    billed_tokens=billed, price_per_1m_tokens=round(per_million, 4), training_type=training_type,
                    cost_usd=cost, currency=prices.currency, price_source=prices.azure_openai.source,
                    prices_retrieved=prices.retrieved, overridden=overridden)


def _capped_tokens(path: Path, encoding: str, limit: int, fmt) -> int:
    from jobs.data.tokens import ModelLimits, TiktokenCounter
    from jobs.data.validate import validate_file

    report = validate_file(path, fmt, TiktokenCounter(encoding), ModelLimits(None, None, None, None), workers=1)
    return sum(min(limit, tokens) for tokens in report.totals)


def _sagemaker(manifest: Manifest, prices: PriceFile, model: str | None, epochs: int | None,
               instance_type: str | None, spot: bool, overridden: list[str]) -> Estimate:
    table = prices.sagemaker.instances
    if instance_type is None or instance_type not in table:
        raise FtopsError(f"no price for instance type {instance_type!r}", field="--instance",
                         hint=f"use one of {', '.join(table)} (or add it to jobs/reference/prices.yaml)")
    instance = table[instance_type]
    train = manifest.files["train"]
    chosen = epochs or prices.sagemaker.default_epochs
    hours = train.tokens * chosen / instance.tokens_per_second / 3600 + prices.sagemaker.startup_hours
    on_demand = round(hours * instance.on_demand_per_hour, 2)
    spot_cost = round(hours * instance.spot_per_hour, 2)
    return Estimate(provider="sagemaker", model=model, dataset_id=manifest.dataset_id, train_examples=train.examples,
                    train_tokens=train.tokens, epochs=chosen,
                    epochs_source="given" if epochs else "default: prices.yaml sagemaker.default_epochs",
                    instance_type=instance_type, tokens_per_second=instance.tokens_per_second,
                    hours=round(hours, 3), on_demand_usd=on_demand, spot_usd=spot_cost, spot=spot,
                    cost_usd=spot_cost if spot else on_demand, currency=prices.currency,
                    price_source=prices.sagemaker.source, prices_retrieved=prices.retrieved, overridden=overridden)
