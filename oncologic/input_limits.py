"""Size limits on one input document, so that one hostile or broken record cannot take the
machine (docs/encounter-format.md, "Limits").

Each limit has a default and an environment variable that changes it for every command
(``solve``, ``batch``, ``explain``, ``test``, ``audit``, ``report``, FHIR input alike);
``oncologic batch --max-administrations N`` changes the administrations limit for one run.
A document past a limit is rejected with an error that names the limit, the value found and
how to raise it (exit status 2; a ``too_large`` record in a batch).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# name -> (default, environment variable, what it counts)
DEFAULTS: dict[str, tuple[int, str, str]] = {
    "max_input_bytes": (16_000_000, "ONCOLOGIC_MAX_INPUT_BYTES", "bytes of one input document"),
    "max_depth": (64, "ONCOLOGIC_MAX_DEPTH", "levels of nesting of objects and lists"),
    "max_values": (2_000_000, "ONCOLOGIC_MAX_VALUES", "values in one document (YAML aliases counted each time used)"),
    "max_administrations": (1000, "ONCOLOGIC_MAX_ADMINISTRATIONS", "administrations in one encounter"),
    "max_drugs": (50, "ONCOLOGIC_MAX_DRUGS", "drugs in one administration"),
}

# the command-line flag that also sets a limit, where there is one
FLAGS = {"max_administrations": "--max-administrations (oncologic batch)"}


def value(name: str) -> int:
    """The limit ``name`` in force: its environment variable when set to a positive integer,
    else the default."""
    default, env, _what = DEFAULTS[name]
    raw = os.environ.get(env)
    if raw is None or raw.strip() == "":
        return default
    try:
        n = int(raw.strip().replace("_", ""))
    except ValueError:
        return default
    return n if n >= 1 else default


def how_to_change(name: str) -> str:
    """The words that say how to raise limit ``name``."""
    _default, env, _what = DEFAULTS[name]
    flag = FLAGS.get(name)
    return f"set {env}=N" + (f" or pass {flag}" if flag else "")


def message(name: str, found: str, limit: int) -> str:
    """The error text of a document past limit ``name``."""
    _default, _env, what = DEFAULTS[name]
    return (f"{found}; the limit is {limit:,} {what} ({name}); to accept larger input, "
            f"{how_to_change(name)}")


@dataclass(frozen=True)
class Limits:
    max_input_bytes: int
    max_depth: int
    max_values: int
    max_administrations: int
    max_drugs: int

    @classmethod
    def current(cls, **overrides: int | None) -> "Limits":
        vals = {name: value(name) for name in DEFAULTS}
        vals.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**vals)
