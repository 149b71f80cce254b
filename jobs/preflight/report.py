"""Preflight rows and the report: one row per check, per job where a check is about a job."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Status = Literal["ok", "warn", "block", "skip"]
ORDER = {"block": 0, "warn": 1, "skip": 2, "ok": 3}


@dataclass(frozen=True)
class Row:
    check: str
    """What was checked, e.g. `quota`, `permission`, `stack`, `azure-model`."""
    job: str
    """The rendered job the row is about, several joined by commas, or `-` for the environment."""
    status: Status
    detail: str
    fix: str = ""
    """What to do about a `block` or `warn` (a command where there is one)."""
    source: str = ""
    """Where the answer came from: the API called, or the file read where no API answers (emulated environments)."""

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Report:
    environment: str
    rows: list[Row] = field(default_factory=list)

    def add(self, *rows: Row) -> None:
        self.rows.extend(rows)

    @property
    def blocked(self) -> bool:
        return any(row.status == "block" for row in self.rows)

    def counts(self) -> dict[str, int]:
        return {status: sum(row.status == status for row in self.rows) for status in ORDER}

    def to_json(self) -> dict:
        return {"environment": self.environment, "blocked": self.blocked, "summary": self.counts(),
                "checks": [row.to_json() for row in self.rows]}


ENV = "-"
