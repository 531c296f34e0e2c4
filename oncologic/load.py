"""Read and validate encounters: JSON or YAML in, an :class:`~oncologic.model.Encounter` out.

Every rejection is an :class:`InputError` whose message names the field path
(``administrations[2].drugs[0].dose.unit``) and the rule broken. Unknown fields are accepted
and reported as warnings. Reference checks that need the generated facts (an HCPCS code the
reference data does not know, an NDC filed under no or several codes) are made here too.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Union

from pydantic import BaseModel, ValidationError

from .model import Encounter, PathError

Loc = tuple[Union[str, int], ...]

NOC_CODES = frozenset()  # NOC handling is a rule (encodings/drugs); the loader needs no list


def fmt_path(loc: Iterable[Union[str, int]]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(encounter)"


class InputError(Exception):
    """Bad input: one or more (path, message) problems."""

    def __init__(self, problems: list[tuple[str, str]], source: str = "", warnings: list[str] | None = None):
        self.problems = problems
        self.source = source
        self.warnings = list(warnings or [])  # what a format mapping noticed before the error
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{self.source}: " if self.source else ""
        return "\n".join(f"{head}{path}: {msg}" for path, msg in self.problems)


@dataclass
class Loaded:
    encounter: Encounter
    warnings: list[str] = field(default_factory=list)
    # drug (admin index, drug index) -> HCPCS code filled in from the NDC crosswalk
    resolved: dict[tuple[int, int], str] = field(default_factory=dict)
    # the site configuration it was read with (oncologic.formats.site.Site), if any
    site: Any = None
    # drug (admin index, drug index) -> the site formulary row it was mapped through
    formulary: dict[tuple[int, int], Any] = field(default_factory=dict)
    # drug (admin index, drug index) -> the RxNorm code its HCPCS code was found through (an
    # imported RxNorm release: RXCUI -> NDCs -> the crosswalk of the date of service)
    rxnorm: dict[tuple[int, int], str] = field(default_factory=dict)


def read_text(path: str) -> tuple[str, str]:
    """The text of FILE (``-`` = standard input) and a display name."""
    if path == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read(), path
    except OSError as exc:
        raise InputError([("(file)", f"cannot read: {exc.strerror}")], path) from None
    except UnicodeDecodeError:
        raise InputError([("(file)", "not UTF-8 text")], path) from None


def parse_document(text: str, source: str = "") -> Any:
    """JSON, or YAML when the text is not JSON.

    A document that opens with ``{`` or ``[`` is read as JSON. When that fails and the first key
    is not quoted, it is a YAML flow mapping (``{id: E1, ...}``) and YAML reads it; the JSON error
    is reported when the text is plainly JSON."""
    stripped = text.lstrip()
    if stripped.startswith("{") or stripped.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            # JSON (a quoted first key, or a list): report the JSON error, never reinterpret it
            if stripped.startswith("[") or stripped[1:].lstrip()[:1] in ('"', "}", ""):
                msg = f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
                raise InputError([("(document)", msg)], source) from None
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML is a dependency
        raise InputError([("(document)", "YAML input needs PyYAML")], source) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise InputError([("(document)", f"invalid YAML{where}: {getattr(exc, 'problem', exc)}")], source) from None
    except (ValueError, TypeError, OverflowError) as exc:  # a YAML scalar that cannot be built, e.g. 2026-02-30
        raise InputError([("(document)", f"invalid YAML value: {exc}")], source) from None


def _pydantic_problems(err: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for item in err.errors(include_url=False):
        loc: Loc = tuple(item.get("loc", ()))
        msg = item.get("msg", "invalid")
        ctx = item.get("ctx") or {}
        exc = ctx.get("error")
        if isinstance(exc, PathError):
            loc = loc + tuple(exc.loc)
            msg = exc.message
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        kind = item.get("type", "")
        if kind == "missing":
            msg = "required field is missing"
        elif kind == "literal_error":
            msg = f"{msg} (got {item.get('input')!r})"
        # drop pydantic's union/tag noise from the path
        loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
        problems.append((fmt_path(loc), msg))
    return problems


def _unknown_fields(model: BaseModel, loc: Loc = ()) -> list[str]:
    out = []
    extra = model.model_extra or {}
    for key in sorted(extra):
        out.append(f"{fmt_path(loc + (key,))}: unknown field ignored")
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            out += _unknown_fields(value, loc + (name,))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    out += _unknown_fields(item, loc + (name, i))
    return out


def _ymd(day) -> int | None:
    return day.year * 10000 + day.month * 100 + day.day if day is not None else None


RXNORM_SYSTEMS = ("rxnorm", "http://www.nlm.nih.gov/research/umls/rxnorm")


def _reference_checks(enc: Encounter) -> tuple[list[tuple[str, str]], dict[tuple[int, int], str], dict[tuple[int, int], str]]:
    from . import refdata

    known = refdata.known_hcpcs()
    problems: list[tuple[str, str]] = []
    resolved: dict[tuple[int, int], str] = {}
    rxnorm: dict[tuple[int, int], str] = {}
    for i, adm in enumerate(enc.administrations):
        for j, drug in enumerate(adm.drugs):
            here = ("administrations", i, "drugs", j)
            if drug.hcpcs is None:
                if drug.ndc is None:
                    if drug.kind is None and drug.code is None:
                        problems.append((fmt_path(here), "a drug needs hcpcs, an ndc that maps to one HCPCS code, kind, or a code the site formulary maps"))
                    elif drug.code is not None and drug.code.system in RXNORM_SYSTEMS:
                        # an imported RxNorm release: its NDCs, then the crosswalk of the date of
                        # service; used only when that gives exactly one HCPCS code
                        codes = refdata.rxnorm_hcpcs(drug.code.code, _ymd(enc.date_of_service))
                        if len(codes) == 1:
                            resolved[(i, j)] = codes[0]
                            rxnorm[(i, j)] = drug.code.code
                    continue
                codes = refdata.ndc_codes_on(drug.ndc, _ymd(enc.date_of_service))
                if len(codes) == 1:
                    resolved[(i, j)] = codes[0]
                elif len(codes) > 1 and drug.kind is None:
                    problems.append((fmt_path(here + ("ndc",)), f"NDC {drug.ndc} is filed under several HCPCS codes ({', '.join(codes)}); give hcpcs"))
                elif not codes and drug.kind is None:
                    problems.append((fmt_path(here + ("ndc",)), f"NDC {drug.ndc} is not in the NDC-HCPCS crosswalk; give hcpcs or kind"))
            elif drug.hcpcs not in known and drug.kind is None:
                problems.append((fmt_path(here + ("hcpcs",)), f"HCPCS code {drug.hcpcs} is not in the reference data; give kind (chemotherapy, hormonal_antineoplastic, therapeutic or hydration)"))
            if drug.dose is None and drug.discarded is not None:
                pass  # a finding, not an input error
            if drug.container and drug.container.size is None and drug.container.count is not None:
                pass
    return problems, resolved, rxnorm


def validate(data: Any, source: str = "", site: Any = None) -> Loaded:
    """Validate one encounter document (already parsed); ``site`` is the site configuration
    (:func:`oncologic.formats.site.load_site`) it is read with."""
    if not isinstance(data, dict):
        raise InputError([("(document)", "an encounter is a mapping of fields (JSON object / YAML mapping)")], source)
    zone = getattr(site, "time_zone", None)
    try:
        enc = Encounter.model_validate(data, context={"time_zone": zone})
    except ValidationError as err:
        raise InputError(_pydantic_problems(err), source) from None
    except PathError as err:  # raised outside pydantic's wrapper
        raise InputError([(fmt_path(err.loc), err.message)], source) from None
    rows = _apply_formulary(enc, site)
    problems, resolved, rxnorm = _reference_checks(enc)
    if problems:
        raise InputError(problems, source)
    return Loaded(enc, _unknown_fields(enc), resolved, site, rows, rxnorm)


def _apply_formulary(enc: Encounter, site: Any) -> dict[tuple[int, int], Any]:
    """Fill each drug's billing codes, name and container from the site formulary row that its
    source code (``drugs[].code``) or NDC matches; what the record says itself is kept."""
    from .model import Amount, Container

    rows: dict[tuple[int, int], Any] = {}
    if site is None or not site.has_formulary:
        return rows
    for i, adm in enumerate(enc.administrations):
        for j, drug in enumerate(adm.drugs):
            row = site.formulary_row(drug.code.system, drug.code.code) if drug.code else None
            if row is None and drug.ndc:
                row = site.formulary_ndc(drug.ndc)
            if row is None:
                continue
            rows[(i, j)] = row
            if drug.hcpcs is None and row.hcpcs:
                drug.hcpcs = row.hcpcs
            if drug.ndc is None and row.ndc:
                drug.ndc = row.ndc
            if drug.name is None and row.name:
                drug.name = row.name
            if drug.container is None and row.container_type:
                size = Amount(value=row.container_size, unit=row.container_unit) if row.container_size is not None else None
                drug.container = Container(type=row.container_type, size=size)
    return rows


def load_file(path: str, site: Any = None) -> Loaded:
    """Read and validate one encounter file (JSON or YAML; ``-`` = standard input)."""
    text, source = read_text(path)
    return validate(parse_document(text, source), source, site)
