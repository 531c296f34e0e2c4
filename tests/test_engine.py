"""The clingo adapter: instrumentation, strict mode, symbols not text, batch == one by one."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path

import pytest

from oncologic import engine
from oncologic.load import load_file, validate
from oncologic.render import claim_json
from oncologic.solver import code_encounters

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples" / "seed_session.yaml"


def _doc():
    import yaml

    return yaml.safe_load(SEED.read_text())


def test_every_output_has_a_tagged_reason():
    claim = code_encounters([load_file(str(SEED))])[0]
    ids = {r.tag.id for r in engine.load_program().rules}
    items = [*claim.lines, *claim.not_billed, *claim.findings]
    assert items, "the seed session must produce lines"
    for item in items:
        assert item.why.rule in ids, item
        assert item.why.text and "{" not in item.why.text
        assert item.why.from_, item


def test_placeholder_must_be_a_rule_variable(tmp_path):
    bad = tmp_path / "bad.lp"
    bad.write_text(
        textwrap.dedent(
            """
            %@rule user.bad
            %@text "{Nope} is not a variable"
            finding(E,"X",info,enc) :- encounter(E).
            """
        )
    )
    with pytest.raises(engine.EncodingError, match="Nope"):
        engine.load_program([bad])


def test_tag_without_rule_is_rejected(tmp_path):
    bad = tmp_path / "dangling.lp"
    bad.write_text('%@rule user.dangling\n%@text "x"\n')
    with pytest.raises(engine.EncodingError, match="not followed by a rule"):
        engine.load_program([bad])


def test_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "syntax.lp"
    bad.write_text("finding(E,\"X\",info,enc) :- encounter(E)\n")  # missing dot
    with pytest.raises(engine.EncodingError, match="syntax.lp"):
        engine.load_program([bad])


def test_strict_mode_turns_undefined_arithmetic_into_an_error(tmp_path):
    rule = tmp_path / "arith.lp"
    rule.write_text('my_units(E,U) :- encounter(E), U = "ten" + 1.\n'
                    '%@rule user.arith\n%@text "x"\nfinding(E,"X",info,enc) :- my_units(E,U).\n')
    with pytest.raises(engine.StrictModeError):
        code_encounters([load_file(str(SEED))], rules=[rule])


def test_strings_are_symbols_not_program_text():
    doc = _doc()
    evil = 'evil"). finding(1,"PWNED",error,enc). %'
    doc["id"] = evil
    doc["administrations"][0]["drugs"][0]["name"] = evil
    doc["administrations"][0]["id"] = evil
    claim = code_encounters([validate(doc)])[0]
    assert claim.encounter == evil
    assert all(f.code != "PWNED" for f in claim.findings)
    assert any(evil in " ".join(ln.why.from_) for ln in claim.lines)


def test_batch_equals_one_by_one():
    base = _doc()
    variants = []
    for shift, setting in [(0, "facility"), (5, "office"), (40, "facility")]:
        doc = copy.deepcopy(base)
        doc["id"] = f"E-{shift}-{setting}"
        doc["setting"] = setting
        stop = doc["administrations"][1]["stop"]
        h, m = map(int, stop.split(":"))
        total = h * 60 + m + shift
        doc["administrations"][1]["stop"] = f"{total // 60:02d}:{total % 60:02d}"
        variants.append(validate(doc))
    together = [claim_json(c) for c in code_encounters(variants)]
    alone = [claim_json(code_encounters([v])[0]) for v in variants]
    assert together == alone
    assert len(set(together)) == 3


def test_output_is_deterministic():
    a = claim_json(code_encounters([load_file(str(SEED))])[0])
    b = claim_json(code_encounters([load_file(str(SEED))])[0])
    assert a == b


def test_program_is_parsed_once_per_process():
    assert engine.load_program() is engine.load_program()


def test_public_api_decoding_equals_the_fast_path(monkeypatch):
    """The answers are the same whether symbols are decoded through clingo's cffi binding or
    through its public API (the fallback for another clingo build)."""
    fast = claim_json(code_encounters([load_file(str(SEED))])[0])
    monkeypatch.setattr(engine, "_rep_decoder", lambda memo: None)
    slow = claim_json(code_encounters([load_file(str(SEED))])[0])
    assert slow == fast
