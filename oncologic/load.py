"""Read and validate encounters: JSON or YAML in, an :class:`~oncologic.model.Encounter` out.

Every rejection is an :class:`InputError` whose message names the field path
(``administrations[2].drugs[0].dose.unit``) and the rule broken. Unknown fields are accepted
and reported as warnings. Reference checks that need the generated facts (an HCPCS code the
reference data does not know, an NDC filed under no or several codes) are made here too.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Union

from pydantic import BaseModel, ValidationError

from . import input_limits as _limits
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

    kind = "input"  # the batch error kind

    def __init__(self, problems: list[tuple[str, str]], source: str = "", warnings: list[str] | None = None):
        self.problems = problems
        self.source = source
        self.warnings = list(warnings or [])  # what a format mapping noticed before the error
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{safe_text(self.source)}: " if self.source else ""
        return "\n".join(f"{head}{safe_text(path)}: {safe_text(msg)}" for path, msg in self.problems)


class LimitError(InputError):
    """The document is past one of the size limits of :mod:`oncologic.input_limits`."""

    kind = "too_large"


_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def safe_text(text: Any) -> str:
    """``text`` with every control character (ESC, BEL, CR, C1 controls, bidirectional
    overrides) shown as an escape (``\\x1b``), so that no input string reaches a terminal raw;
    newlines and tabs are kept."""
    text = str(text)
    if not _CONTROL_RE.search(text):
        return text
    return _CONTROL_RE.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


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
    """The text of FILE (``-`` = standard input) and a display name. A file past the
    ``max_input_bytes`` limit is refused before it is read (LimitError)."""
    lim = _limits.value("max_input_bytes")
    if path == "-":
        text = sys.stdin.read(lim + 1)
        _check_size(text, "<stdin>", _limits.Limits.current())
        return text, "<stdin>"
    try:
        import os

        size = os.stat(path).st_size
        if size > lim:
            raise LimitError([("(document)", _limits.message("max_input_bytes", f"the file is {size:,} bytes", lim))], path)
        with open(path, encoding="utf-8") as fh:
            return fh.read(lim + 1), path
    except OSError as exc:
        raise InputError([("(file)", f"cannot read: {exc.strerror}")], path) from None
    except UnicodeDecodeError:
        raise InputError([("(file)", "not UTF-8 text")], path) from None


class _Duplicates:
    """Objects of one JSON document that gave a key more than once (found by the pair hook,
    reported with their path by the structure check)."""

    def __init__(self) -> None:
        self.found: dict[int, list[str]] = {}

    def hook(self, pairs: list[tuple[str, Any]]) -> dict:
        out = dict(pairs)
        if len(out) < len(pairs):
            seen: set[str] = set()
            dups = []
            for key, _v in pairs:
                if key in seen and key not in dups:
                    dups.append(key)
                seen.add(key)
            self.found[id(out)] = dups
        return out


def _too_deep(source: str, limit: int) -> LimitError:
    return LimitError([("(document)", _limits.message("max_depth", "the document nests deeper than the limit", limit))], source)


def check_structure(doc: Any, source: str = "", duplicates: dict[int, list[str]] | None = None,
                    limit: _limits.Limits | None = None) -> int:
    """Reject a parsed document nested deeper than ``max_depth`` or holding more than
    ``max_values`` values, and one whose objects repeat a key (``duplicates``, from the JSON
    pair hook). Iterative: the check itself never recurses. Returns the number of keys of its
    objects."""
    lim = limit or _limits.Limits.current()
    stack: list[tuple[Any, Loc]] = [(doc, ())]
    count = 0
    keys = 0
    while stack:
        node, loc = stack.pop()
        count += 1
        if count > lim.max_values:
            raise LimitError([("(document)", _limits.message("max_values", f"the document holds more than {lim.max_values:,} values", lim.max_values))], source)
        if isinstance(node, dict):
            if len(loc) >= lim.max_depth:
                raise _too_deep(source, lim.max_depth)
            if duplicates and id(node) in duplicates:
                repeated = duplicates[id(node)]
                raise InputError([(fmt_path(loc + (k,)), f"duplicate key {k!r}: an object gives each field once (which value is meant is ambiguous)") for k in repeated], source)
            keys += len(node)
            for key, value in node.items():
                if isinstance(value, (dict, list)):
                    stack.append((value, loc + (str(key),)))
                else:
                    count += 1
        elif isinstance(node, list):
            if len(loc) >= lim.max_depth:
                raise _too_deep(source, lim.max_depth)
            for i, value in enumerate(node):
                if isinstance(value, (dict, list)):
                    stack.append((value, loc + (i,)))
                else:
                    count += 1
    return keys


def _check_size(text: str, source: str, lim: _limits.Limits) -> None:
    # a character is at least one byte: only a long text needs its exact UTF-8 size
    if len(text) > lim.max_input_bytes or (len(text) * 4 > lim.max_input_bytes and len(text.encode("utf-8", "surrogateescape")) > lim.max_input_bytes):
        size = len(text.encode("utf-8", "surrogateescape"))
        raise LimitError([("(document)", _limits.message("max_input_bytes", f"the document has {size:,} bytes or more", lim.max_input_bytes))], source)


def parse_json(text: str, source: str = "", limit: _limits.Limits | None = None) -> Any:
    """One JSON document, checked against the size limits, with duplicate keys rejected.
    Raises InputError (LimitError past a limit)."""
    lim = limit or _limits.Limits.current()
    _check_size(text, source, lim)
    try:
        doc = json.loads(text, object_pairs_hook=_pairs)
    except _DuplicateKey:
        # read again, slowly, to name the object that repeats a key
        dups = _Duplicates()
        check_structure(json.loads(text, object_pairs_hook=dups.hook), source, dups.found, lim)
        raise InputError([("(document)", "a key is given twice in one object")], source) from None  # pragma: no cover
    except json.JSONDecodeError as exc:
        msg = f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise InputError([("(document)", msg)], source) from None
    except RecursionError:
        raise _too_deep(source, lim.max_depth) from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise InputError([("(document)", f"invalid JSON: {exc}")], source) from None
    _check_fast(doc, source, lim)
    return doc


class _DuplicateKey(Exception):
    pass


def _pairs(pairs: list) -> dict:
    """The JSON object hook of the fast path: a dict, or _DuplicateKey when a key repeats."""
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _DuplicateKey
    return out


def _check_fast(doc: Any, source: str, lim: _limits.Limits) -> None:
    """:func:`check_structure` without paths (depth and values only): the path is worked out
    only for a document that breaks a limit."""
    stack = [(doc, 0)]
    pop, push = stack.pop, stack.append
    count = 0
    while stack:
        node, depth = pop()
        kind = type(node)
        if kind is not dict and kind is not list:
            continue
        if depth >= lim.max_depth:
            raise _too_deep(source, lim.max_depth)
        count += len(node)
        if count > lim.max_values:
            check_structure(doc, source, None, lim)
        for value in (node.values() if kind is dict else node):
            kind = type(value)
            if kind is dict or kind is list:
                push((value, depth + 1))


def _yaml_loader():
    """A safe YAML loader that rejects duplicate keys and reads an unquoted ``09:00`` as the
    text "09:00" (YAML 1.1 would read it as the sexagesimal integer 540)."""
    global _YAML_LOADER
    if _YAML_LOADER is not None:
        return _YAML_LOADER
    import yaml
    from yaml.constructor import ConstructorError

    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            # the keys written in this mapping (a merge ``<<: *anchor`` may be overridden)
            seen: dict[Any, Any] = {}
            for key_node, _value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = loader.construct_object(key_node, deep=deep)
                try:
                    hash(key)
                except TypeError:
                    raise ConstructorError("while reading a mapping", node.start_mark,
                                           "a key that is itself a list or mapping", key_node.start_mark) from None
                if key in seen:
                    raise ConstructorError("while reading a mapping", node.start_mark,
                                           f"duplicate key {key!r}: a mapping gives each field once", key_node.start_mark)
                seen[key] = True
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    Loader.add_constructor("tag:yaml.org,2002:map", construct_mapping)
    # the resolvers of SafeLoader, without the sexagesimal forms of int and float
    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers
                if not (tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and ":" in regexp.pattern and "[0-5]?[0-9]" in regexp.pattern)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    import re as _re

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:int",
        _re.compile(r"""^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$""", _re.X),
        list("-+0123456789"))
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        _re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", _re.X),
        list("-+0123456789."))
    _YAML_LOADER = Loader
    return Loader


_YAML_LOADER = None


def parse_yaml(text: str, source: str = "", limit: _limits.Limits | None = None) -> Any:
    """One YAML document, checked like :func:`parse_json`. Raises InputError."""
    lim = limit or _limits.Limits.current()
    _check_size(text, source, lim)
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML is a dependency
        raise InputError([("(document)", "YAML input needs PyYAML")], source) from None
    try:
        doc = yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise InputError([("(document)", f"invalid YAML{where}: {getattr(exc, 'problem', None) or exc}")], source) from None
    except RecursionError:
        raise _too_deep(source, lim.max_depth) from None
    except (ValueError, TypeError, OverflowError) as exc:  # a YAML scalar that cannot be built, e.g. 2026-02-30
        raise InputError([("(document)", f"invalid YAML value: {exc}")], source) from None
    _check_fast(doc, source, lim)
    return doc


def parse_document(text: str, source: str = "", limit: _limits.Limits | None = None) -> Any:
    """JSON, or YAML when the text is not JSON.

    A document that opens with ``{`` or ``[`` is read as JSON. When that fails and the first key
    is not quoted, it is a YAML flow mapping (``{id: E1, ...}``) and YAML reads it; the JSON error
    is reported when the text is plainly JSON. Size limits, duplicate keys: :func:`parse_json`."""
    stripped = text.lstrip()
    if stripped.startswith("{") or stripped.startswith("["):
        try:
            return parse_json(text, source, limit)
        except LimitError:
            raise
        except InputError:
            # JSON (a quoted first key, or a list): report the JSON error, never reinterpret it
            if stripped.startswith("[") or stripped[1:].lstrip()[:1] in ('"', "}", ""):
                raise
    return parse_yaml(text, source, limit)


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
            elif drug.hcpcs not in known and drug.kind is None and adm.route != "transfusion":
                # (a transfusion's blood products are billed by the P-codes the record gives: the
                # pricing files do not list them; encodings/admin/instillation_transfusion.lp)
                problems.append((fmt_path(here + ("hcpcs",)), f"HCPCS code {drug.hcpcs} is not in the reference data; give kind (chemotherapy, hormonal_antineoplastic, therapeutic or hydration)"))
            if drug.dose is None and drug.discarded is not None:
                pass  # a finding, not an input error
            if drug.container and drug.container.size is None and drug.container.count is not None:
                pass
    return problems, resolved, rxnorm


def check_counts(data: dict, source: str = "", limit: _limits.Limits | None = None) -> None:
    """Reject an encounter document with more administrations, or an administration with more
    drugs, than the limits allow (LimitError), before anything is built from it."""
    lim = limit or _limits.Limits.current()
    admins = data.get("administrations")
    if not isinstance(admins, list):
        return
    if len(admins) > lim.max_administrations:
        raise LimitError([("administrations", _limits.message(
            "max_administrations", f"{len(admins):,} administrations", lim.max_administrations))], source)
    problems = []
    for i, adm in enumerate(admins):
        drugs = adm.get("drugs") if isinstance(adm, dict) else None
        if isinstance(drugs, list) and len(drugs) > lim.max_drugs:
            problems.append((fmt_path(("administrations", i, "drugs")), _limits.message(
                "max_drugs", f"{len(drugs):,} drugs in one administration", lim.max_drugs)))
    if problems:
        raise LimitError(problems, source)


def validate(data: Any, source: str = "", site: Any = None, limit: _limits.Limits | None = None) -> Loaded:
    """Validate one encounter document (already parsed); ``site`` is the site configuration
    (:func:`oncologic.formats.site.load_site`) it is read with; ``limit`` the size limits
    (default: :meth:`oncologic.input_limits.Limits.current`)."""
    if not isinstance(data, dict):
        raise InputError([("(document)", "an encounter is a mapping of fields (JSON object / YAML mapping)")], source)
    check_counts(data, source, limit)
    zone = getattr(site, "time_zone", None)
    try:
        enc = Encounter.model_validate(data, context={"time_zone": zone})
    except RecursionError:  # a document built in Python, not read by parse_document
        raise _too_deep(source, (limit or _limits.Limits.current()).max_depth) from None
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
