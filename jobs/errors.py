"""One error type for every user mistake: it renders as one line naming file, line, field and fix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class FtopsError(Exception):
    """A problem the user can fix. The CLI prints `str(err)` and exits with `exit_code`."""

    message: str
    source: str | Path | None = None
    line: int | None = None
    field: str | None = None
    hint: str | None = None
    exit_code: int = 1

    def __str__(self) -> str:
        where = ""
        if self.source is not None:
            where = str(self.source)
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        what = f"{self.field}: " if self.field else ""
        fix = f" ({self.hint})" if self.hint else ""
        return f"{where}{what}{self.message}{fix}"


class ConfigError(FtopsError):
    """A declaration (environment, job definition) is invalid."""


class CloudError(FtopsError):
    """A cloud or emulator call failed in a way the user should see (names the resource and the code)."""


class FieldValueError(ValueError):
    """Raised by a model validator about one field (a dotted path below the model): the error then names that
    field and its line, not the model's first line. A ValueError, so pydantic reports it like any other."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.loc = tuple(field.split("."))
