"""Fuzzing the readers (issue 17): whatever text or structure comes in, oncologic answers with a
claim or a clear input error (exit status 2, a batch error record), never a traceback and never
exit status 1.

hypothesis drives four readers: the JSON and YAML readers of the native contract (raw text, and
the contract's own example with values replaced, removed or added anywhere), the FHIR reader (a
shipped bundle mutated the same way) and the batch reader (lines of random bytes among good
records). Derandomized and bounded so the file runs in CI in well under a minute; set
HYPOTHESIS_PROFILE=dev for long local runs (tests/properties/conftest.py)."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oncologic.batch import BatchOptions, code_records
from oncologic.cli import main
from oncologic.load import InputError, parse_document, parse_json, parse_yaml, validate
from oncologic.solver import code_encounters

ROOT = Path(__file__).resolve().parents[1]
SEED = yaml.safe_load((ROOT / "examples" / "seed_session.yaml").read_text())
SEED = json.loads(json.dumps(SEED, default=str))  # dates as text, as a JSON sender writes them
BUNDLE = json.loads((ROOT / "examples" / "fhir" / "seed_session.bundle.json").read_text())

_DEV = os.environ.get("HYPOTHESIS_PROFILE") == "dev"


def fuzz(n: int):
    """Settings of one fuzz test: ``n`` examples (x20 with HYPOTHESIS_PROFILE=dev), reproducible."""
    return settings(max_examples=n * (20 if _DEV else 1), deadline=None, derandomize=not _DEV, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


# -- strategies ------------------------------------------------------------------------------

# the characters hostile input is made of: JSON/YAML syntax, X12 delimiters, controls, escapes
_NASTY = st.sampled_from(list('{}[]:,"\'\\-#&*!|>%@`~^ \t\n\r\x00\x07\x1b\x7f\u2028\u202e\ufeff') +
                         ["09:00", "900", "2026-02-30", "null", "true", "1e999", "-0", "<<", "&a", "*a", "NaN"])
TEXT = st.one_of(st.text(max_size=200), st.lists(st.one_of(_NASTY, st.text(max_size=8)), max_size=40).map("".join))

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30), _NASTY,
    st.sampled_from(["", " ", "09:00", "25:61", "2026-03-04T23:40", "10:00+05:00", "2026-03-04T09:00Z", "J9263",
                     "0006-3026-02", "C18.7", "iv_infusion", "mg", "mL", "single_dose", "office", "facility",
                     "medicare", "E" * 300, "a1", "main", "port"]),
)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)


def _field_names() -> list[str]:
    from oncologic.model import Claim, Encounter

    names: set[str] = set()
    for model in (Encounter, Claim):
        schema = model.model_json_schema()
        for obj in [schema, *schema.get("$defs", {}).values()]:
            names.update(obj.get("properties", {}))
    return sorted(names)


# an added key is a field of the contract half of the time (an unknown one otherwise)
KEYS = st.one_of(st.sampled_from(_field_names()), st.text(max_size=12))


def _paths(node, here=()):
    yield here
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, here + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, here + (i,))


@st.composite
def mutated(draw, base):
    """``base`` with 1-4 edits anywhere: a value replaced, a key or list item removed, a field added."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(JSON_VALUES)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(KEYS)] = draw(JSON_VALUES)
        else:
            parent.append(draw(JSON_VALUES))
    return doc


def _only_input_errors(fn, *args):
    """Run ``fn``: a result or an InputError whose problems are (path, message) strings."""
    try:
        return fn(*args)
    except InputError as exc:
        assert exc.problems and all(isinstance(p, str) and isinstance(m, str) and m for p, m in exc.problems)
        exc.render()
        return None


# -- the readers -----------------------------------------------------------------------------


@fuzz(300)
@given(TEXT)
def test_json_and_yaml_readers_on_any_text(text):
    for reader in (parse_document, parse_json, parse_yaml):
        doc = _only_input_errors(reader, text, "fuzz")
        if doc is not None:
            _only_input_errors(validate, doc, "fuzz")


@fuzz(60)
@given(st.lists(mutated(SEED), min_size=4, max_size=4))
def test_native_encounters_with_any_edit_validate_and_code(docs):
    loaded = [x for x in (_only_input_errors(validate, d, "fuzz") for d in docs) if x is not None]
    # a valid encounter always codes: a claim with why on every item, never an exception
    for claim in code_encounters(loaded):
        for item in claim.lines + claim.not_billed + claim.findings:
            assert item.why.rule and item.why.text


@fuzz(40)
@given(mutated(SEED))
def test_native_yaml_text_round_trip(doc):
    text = yaml.safe_dump(doc, allow_unicode=True)
    parsed = _only_input_errors(parse_document, text, "fuzz.yaml")
    if parsed is not None:
        _only_input_errors(validate, parsed, "fuzz.yaml")


@fuzz(60)
@given(mutated(BUNDLE))
def test_fhir_reader_on_mutated_bundles(bundle):
    from oncologic.formats.fhir import bundle_to_documents, validate_mapped

    mapped = _only_input_errors(bundle_to_documents, bundle, None)
    for m in mapped or ():
        loaded = _only_input_errors(validate_mapped, m, "fuzz")
        if loaded is not None:
            code_encounters([loaded])


@fuzz(40)
@given(st.lists(st.one_of(st.binary(max_size=80), TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
                          mutated(SEED).map(lambda d: json.dumps(d).encode())), min_size=1, max_size=6))
def test_batch_reader_gives_one_record_per_line(tmp_path_factory, lines):
    from oncologic.batch import iter_records

    path = tmp_path_factory.mktemp("fuzz") / "in.jsonl"
    body = b"\n".join(x.replace(b"\n", b" ").replace(b"\r", b" ") for x in lines) + b"\n"
    path.write_bytes(body)
    items = list(iter_records(path))
    outs = code_records(items, BatchOptions())
    assert len(outs) == len(items)
    for (rec, _source, _text), (line, info) in zip(items, outs):
        obj = json.loads(line)
        assert obj["record"] == rec
        assert ("claim" in obj) != ("error" in obj)
        if "error" in obj:
            assert obj["error"]["kind"] in ("input", "too_large"), obj  # never an engine failure
            assert all(p["message"] for p in obj["error"]["problems"])


@fuzz(25)
@given(st.lists(st.one_of(TEXT.map(lambda t: t.replace("\n", " ")), mutated(BUNDLE).map(json.dumps),
                          st.sampled_from(['{"resourceType":"Patient","id":"p1"}', '{"resourceType":5}', "[]", "{}"])),
                min_size=1, max_size=4))
def test_fhir_batch_reader_gives_records_not_exceptions(tmp_path_factory, lines):
    from oncologic.formats.fhir_batch import iter_fhir_records

    path = tmp_path_factory.mktemp("fhirfuzz") / "in.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogateescape")
    items = list(iter_fhir_records(path))
    if any(x.strip() for x in lines):  # blank lines are not records
        assert items, "every input gives at least one record (an error record when nothing maps)"
    outs = code_records(items, BatchOptions(source_format="fhir"))
    for line, _info in outs:
        obj = json.loads(line)
        assert ("claim" in obj) != ("error" in obj)
        if "error" in obj:
            assert obj["error"]["kind"] in ("input", "too_large"), obj


@fuzz(25)
@given(st.one_of(TEXT, mutated(SEED).map(json.dumps), mutated(BUNDLE).map(json.dumps)),
       st.sampled_from([("solve",), ("solve", "--json"), ("solve", "--from", "fhir"), ("explain", "--line", "1")]))
def test_cli_exit_status_is_0_or_2(tmp_path_factory, text, command):
    path = tmp_path_factory.mktemp("cli") / "in.txt"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    res = CliRunner().invoke(main, [command[0], str(path), *command[1:]])
    assert res.exit_code in (0, 2), (res.exit_code, res.output, res.exception)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "\x1b" not in res.output


def test_the_fuzzers_reach_valid_and_invalid_input():
    """The strategies are not vacuous: the seed validates, one edit can break it."""
    assert validate(copy.deepcopy(SEED)).encounter.id == "ENC-SEED-001"
    with pytest.raises(InputError):
        validate({**SEED, "administrations": [{"id": "x", "route": 5}]})
