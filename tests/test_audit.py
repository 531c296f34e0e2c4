"""Posted-claim audit: gaps against the engine's own claim, and the documentation-fix search
checked against the rules by re-solving (no threshold is written in these tests)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from click.testing import CliRunner

from oncologic.audit import Posted, audit, read_posted
from oncologic.cli import main
from oncologic.load import Loaded, load_file
from oncologic.model import absolute_time
from oncologic.render import claim_json
from oncologic.solver import code_encounters
from oncologic.formats.x12 import to_837

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples/seed_session.yaml"

# one chemotherapy infusion of 150 minutes: a remainder that does not reach another hour
LONG = {
    "id": "AUD-1", "setting": "office", "date_of_service": "2026-03-04", "diagnoses": ["C18.7"],
    "administrations": [{"id": "a1", "route": "iv_infusion", "start": "09:00", "stop": "11:30",
                         "drugs": [{"hcpcs": "J9263", "dose": {"value": 170, "unit": "mg"}}]}],
}


def _posted(claim) -> list[Posted]:
    return [Posted(ln.code, list(ln.modifiers), ln.units) for ln in claim.lines]


def _units(claim, code: str) -> int:
    return sum(ln.units for ln in claim.lines if ln.code == code)


def test_posting_the_engine_claim_is_clean() -> None:
    loaded = load_file(str(SEED))
    claim = code_encounters([loaded])[0]
    assert audit(loaded, _posted(claim), search_fixes=False).gaps == []
    # the same through both posted formats
    assert read_posted(claim_json(claim), claim.encounter) == _posted(claim)
    assert read_posted(to_837(claim, loaded.encounter, zero_charges=True), claim.encounter) == _posted(claim)


def test_a_missing_line_is_a_missed_charge_with_its_reason() -> None:
    loaded = load_file(str(SEED))
    claim = code_encounters([loaded])[0]
    for i, ln in enumerate(claim.lines):
        posted = _posted(claim)
        del posted[i]
        if any(p.code == ln.code for p in posted):
            continue
        gaps = audit(loaded, posted, search_fixes=False).gaps
        assert len(gaps) == 1
        g = gaps[0]
        assert (g.kind, g.code, g.units, g.rule) == ("missed", ln.code, ln.units, ln.why.rule)
        if ln.asp_limit is not None:
            assert g.dollars_at_asp == ln.asp_limit.total


def test_an_extra_unit_is_unsupported_and_the_fix_is_the_rules_own_threshold() -> None:
    from oncologic.load import validate

    loaded = validate(LONG)
    claim = code_encounters([loaded])[0]
    rejected = [nb for nb in claim.not_billed if nb.subject == "a1"]
    assert rejected, "a 150-minute infusion leaves a remainder the rules reject"
    code = rejected[0].candidate
    posted = _posted(claim)
    have = _units(claim, code)
    if have:
        posted = [Posted(p.code, p.modifiers, p.units + 1 if p.code == code else p.units) for p in posted]
    else:
        posted.append(Posted(code, [], 1))
    result = audit(loaded, posted)
    [gap] = [g for g in result.gaps if g.code == code]
    assert gap.kind == "unsupported" and gap.units == 1 and gap.rule == rejected[0].why.rule
    fix = gap.fix
    assert fix is not None and fix.subject == "a1" and fix.minutes_more > 0

    def with_stop(minutes_after_start: int) -> Loaded:
        data = json.loads(json.dumps(LONG))
        stop = absolute_time(dt.date(2026, 3, 4), "09:00") + dt.timedelta(minutes=minutes_after_start)
        data["administrations"][0]["stop"] = stop.strftime("%H:%M")
        return validate(data)

    documented = 150
    at_fix, just_before = code_encounters([with_stop(documented + fix.minutes_more), with_stop(documented + fix.minutes_more - 1)])
    assert _units(at_fix, code) == have + 1  # the fix supports the posted units ...
    assert _units(just_before, code) == have  # ... and it is the smallest such stop time
    assert fix.needed == (dt.datetime(2026, 3, 4, 9, 0) + dt.timedelta(minutes=documented + fix.minutes_more)).strftime("%H:%M")


def test_a_code_nothing_supports() -> None:
    loaded = validate_seed = load_file(str(SEED))
    claim = code_encounters([validate_seed])[0]
    posted = _posted(claim) + [Posted("96523", [], 1)]
    [gap] = audit(loaded, posted).gaps
    assert gap.kind == "unsupported" and gap.code == "96523" and gap.supported_units == 0


def test_cli_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    loaded = load_file(str(SEED))
    claim = code_encounters([loaded])[0]
    good = tmp_path / "posted.json"
    good.write_text(claim_json(claim))
    r = runner.invoke(main, ["audit", str(SEED), "--posted", str(good)])
    assert r.exit_code == 0, r.output
    x12 = ROOT / "examples/x12/posted_seed.837i.x12"
    r = runner.invoke(main, ["audit", str(SEED), "--posted", str(x12), "--json"])
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    kinds = {(g["kind"], g["code"]) for g in data["gaps"]}
    assert kinds, "the example posted claim differs from the documentation"
    bad = tmp_path / "bad.json"
    bad.write_text('{"lines": [{"units": 1}]}')
    r = runner.invoke(main, ["audit", str(SEED), "--posted", str(bad)])
    assert r.exit_code == 2 and "lines[0].code" in r.output and "Traceback" not in r.output
    bad.write_text("ISA*garbage")
    r = runner.invoke(main, ["audit", str(SEED), "--posted", str(bad)])
    assert r.exit_code == 2 and "Traceback" not in r.output
