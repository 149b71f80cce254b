"""Region names checked when an environment file loads: AWS against botocore's partition data (the regions the
installed SDK knows), Azure against the versioned list in jobs/reference/azure_locations.yaml."""

from __future__ import annotations

import difflib
import importlib.util
import re
from functools import cache
from pathlib import Path

import orjson
import yaml

REFERENCE = Path(__file__).resolve().parent.parent / "reference"


@cache
def _partitions() -> list[dict]:
    """botocore's bundled partitions.json (read as data: importing botocore costs more than the whole
    environment load)."""
    spec = importlib.util.find_spec("botocore")
    assert spec is not None and spec.origin is not None, "botocore is a dependency of ftops"
    return orjson.loads((Path(spec.origin).parent / "data" / "partitions.json").read_bytes())["partitions"]


@cache
def aws_regions() -> frozenset[str]:
    """Every region of every partition in botocore's partition data."""
    return frozenset(region for partition in _partitions() for region in partition["regions"]
                     if not region.endswith("-global"))  # `aws-global` and the like are endpoints, not regions


@cache
def partition_of(region: str) -> str:
    """The ARN partition of `region` (`aws`, `aws-cn`, `aws-us-gov`, ...): the partition that lists it in
    botocore's data, else the one whose region pattern matches it (a region newer than the data)."""
    for partition in _partitions():
        if region in partition["regions"]:
            return partition["id"]
    for partition in _partitions():
        if re.match(partition["regionRegex"], region):
            return partition["id"]
    return "aws"


@cache
def azure_locations() -> tuple[str, frozenset[str]]:
    """(the list's retrieval date, the location names)."""
    data = yaml.load((REFERENCE / "azure_locations.yaml").read_text(), Loader=getattr(yaml, "CSafeLoader",
                                                                                        yaml.SafeLoader))
    return data["retrieved"], frozenset(data["locations"])


def _suggest(value: str, known: frozenset[str]) -> str:
    close = closest(value, known)
    return f"; did you mean {close}?" if close else ""


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours each count
    one (`us-esat-1` is one swap from `us-east-1`, where difflib's ratio prefers `us-west-1`)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def closest(value: str, known) -> str | None:
    """The known name nearest to `value`, when it is near enough to be a typo (a third of its length, at most)."""
    if not known or len(value) > 100:
        return None
    best = min(sorted(known), key=lambda name: (edit_distance(value, name), name))
    if edit_distance(value, best) <= max(1, len(value) // 3):
        return best
    close = difflib.get_close_matches(value, sorted(known), n=1, cutoff=0.75)
    return close[0] if close else None


def check_aws_region(region: str) -> str:
    known = aws_regions()
    if region not in known:
        raise ValueError(f"{region!r} is not an AWS region botocore knows{_suggest(region, known)} "
                         "(botocore's partitions.json; upgrade boto3 for a region opened since)")
    return region


def check_azure_location(location: str) -> str:
    retrieved, known = azure_locations()
    if location not in known:
        raise ValueError(f"{location!r} is not an Azure region{_suggest(location, known)} (the list in "
                         f"jobs/reference/azure_locations.yaml, retrieved {retrieved}; add a new region there)")
    return location
