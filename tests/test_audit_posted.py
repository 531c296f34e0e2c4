"""Audits of posted files written the way practice-management systems write them: several
claims per transaction set, patient control numbers that are not the encounter id, replacement
claims (CLM05-3 = 7, REF*F8), revenue-code-only lines. The example files are hand-written
(examples/x12/pm_*.x12, valid for pyx12), never produced by oncologic's own 837 writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from oncologic.audit import audit, read_posted_claim, select_claim
from oncologic.audit_batch import audit_batch, batch_table, load_encounters
from oncologic.cli import main
from oncologic.load import InputError, load_file, validate
from oncologic.posted import read_837

ROOT = Path(__file__).resolve().parents[1]
PM_P = ROOT / "examples/x12/pm_three_claims.837p.x12"
PM_I = ROOT / "examples/x12/pm_hospital_batch.837i.x12"
PEMBRO = ROOT / "examples/office_pembrolizumab_q3w.yaml"
SEED = ROOT / "examples/seed_session.yaml"


def _pembro_on(day: str, member: str = "1EG4TE5MK72"):
    import yaml

    data = yaml.safe_load(PEMBRO.read_text())
    data["date_of_service"] = day
    data["payer"]["member_id"] = member
    return validate(json.loads(json.dumps(data, default=str)))


def test_the_pm_file_holds_three_claims_with_members_dates_and_charges() -> None:
    claims = read_837(PM_P.read_text())
    assert [(c.claim_id, c.member_id, [d.isoformat() for d in c.dates]) for c in claims] == [
        ("PA20417-1", "1EG4TE5MK72", ["2026-02-11"]),
        ("PA20417-2", "1EG4TE5MK72", ["2026-03-04"]),
        ("PA31102-1", "3GH4IJ5KL66", ["2026-03-04"]),
    ]
    assert sum(ln.charge for ln in claims[1].lines) == claims[1].total


def test_the_claim_is_picked_by_member_and_date_of_service() -> None:
    text = PM_P.read_text()
    for day, want in (("2026-03-04", "PA20417-2"), ("2026-02-11", "PA20417-1")):
        loaded = _pembro_on(day)
        lines, sel = read_posted_claim(text, loaded.encounter)
        assert sel.claim_id == want and "member id 1EG4TE5MK72" in sel.note
        assert sel.mismatch is None
    # the earlier cycle was billed as documented; the current one carries an extra hour and a missing modifier 25
    assert audit(_pembro_on("2026-02-11"), read_posted_claim(text, _pembro_on("2026-02-11").encounter)[0],
                 search_fixes=False).clean
    loaded = _pembro_on("2026-03-04")
    lines, sel = read_posted_claim(text, loaded.encounter)
    result = audit(loaded, lines, selection=sel)
    gaps = {(g.kind, g.code) for g in result.gaps}
    assert gaps == {("modifiers", "99214"), ("unsupported", "96415")}
    [extra] = [g for g in result.gaps if g.code == "96415"]
    assert extra.posted_charge == "430.00" and extra.value_basis == "posted charge"
    assert extra.fix is None and "never considered 96415" in extra.no_fix


def test_no_matching_claim_names_the_claims_it_found() -> None:
    loaded = _pembro_on("2026-01-14")
    with pytest.raises(InputError) as err:
        read_posted_claim(PM_P.read_text(), loaded.encounter)
    msg = err.value.render()
    assert "no claim for member 1EG4TE5MK72 on 2026-01-14" in msg
    for cid in ("PA20417-1", "PA20417-2", "PA31102-1"):
        assert cid in msg


def test_a_claim_for_another_patient_or_date_is_not_compared() -> None:
    claims = read_837(PM_P.read_text())
    loaded = _pembro_on("2026-03-04")
    pc, sel = select_claim(claims, loaded.encounter, claim_id="PA31102-1")
    assert sel.mismatch and "member 3GH4IJ5KL66" in sel.mismatch
    result = audit(loaded, [], selection=sel)
    assert not result.audited and not result.clean and result.gaps == []
    pc, sel = select_claim(claims, loaded.encounter, claim_id="PA20417-1")
    assert sel.mismatch and "2026-02-11" in sel.mismatch and "member" not in sel.mismatch.split(":")[1]
    r = CliRunner().invoke(main, ["audit", str(PEMBRO), "--posted", str(PM_P), "--claim", "PA31102-1"])
    assert r.exit_code == 1 and "not audited" in r.output and "UNSUPPORTED" not in r.output


def test_a_replacement_supersedes_its_original_and_revenue_only_lines_are_not_compared() -> None:
    loaded = load_file(str(SEED))
    claims = read_837(PM_I.read_text())
    assert [c.frequency for c in claims] == ["1", "1", "1", "7"]
    lines, sel = read_posted_claim(PM_I.read_text(), loaded.encounter)
    assert sel.claim_id == "V00017731" and sel.superseded and "replaces" in sel.note and "latest" in sel.note
    result = audit(loaded, lines, selection=sel, search_fixes=False)
    # the original lacked 96368 (and had a second revenue-only line); the replacement has it
    assert ("missed", "96368") not in {(g.kind, g.code) for g in result.gaps}
    assert [(p.revenue, p.units, str(p.charge)) for p in result.not_compared] == [("0250", 3, "45.60")]
    assert result.to_dict()["not_compared"][0]["reason"].startswith("a revenue code without a procedure code")


def test_ref_f8_names_the_original_and_a_void_leaves_nothing_billed() -> None:
    text = PM_I.read_text()
    # the replacement under a new account number, naming the original by REF*F8
    renamed = text.replace("CLM*V00017731*2539.60***13:A:7", "CLM*V00017999*2539.60***13:A:7").replace(
        "REF*F8*26063000123400", "REF*F8*V00017731")
    assert renamed != text
    loaded = load_file(str(SEED))
    _lines, sel = read_posted_claim(renamed, loaded.encounter)
    assert sel.claim_id == "V00017999" and "replaces V00017731" in sel.note
    voided = text.replace("13:A:7", "13:A:8")
    lines, sel = read_posted_claim(voided, loaded.encounter)
    assert sel.voided and lines == [] and "voids" in sel.note
    result = audit(loaded, lines, selection=sel, search_fixes=False)
    assert result.gaps and all(g.kind == "missed" for g in result.gaps)


def test_folder_audit_pairs_by_member_and_date_and_ranks_rules_by_money(tmp_path: Path) -> None:
    for name in ("seed_session.yaml", "cisplatin_hydration.yaml", "folfox_facility.yaml"):
        (tmp_path / name).write_text((ROOT / "examples" / name).read_text())
    result = audit_batch(load_encounters(str(tmp_path)), read_837(PM_I.read_text()), search_fixes=False)
    assert result.unmatched_encounters == ["ENC-FAC-FOLFOX-C3"]
    assert [u.split(" ")[0] for u in result.unmatched_claims] == ["V00017810"]
    by_enc = {r.encounter: r for r in result.results}
    assert set(by_enc) == {"ENC-SEED-001", "ENC-FAC-CIS-C2"}
    d = result.to_dict()
    assert d["totals"]["unsupported"]["gaps"] == sum(1 for r in result.results for g in r.gaps if g.kind == "unsupported")
    values = [float(p["value"]) for p in d["patterns"]]
    assert values == sorted(values, reverse=True) and values[0] > 0
    top = d["patterns"][0]
    assert any(g.rule == top["rule"] for r in result.results for g in r.gaps)
    text = batch_table(result)
    assert "Patterns of error" in text and "ENC-FAC-FOLFOX-C3" in text
    r = CliRunner().invoke(main, ["audit", str(tmp_path), "--posted", str(PM_I), "--json", "--no-fixes"])
    assert r.exit_code == 1 and json.loads(r.stdout)["unmatched_encounters"] == ["ENC-FAC-FOLFOX-C3"]


@pytest.mark.parametrize("path", sorted((ROOT / "examples/x12").glob("*.x12")), ids=lambda p: p.name)
def test_the_posted_example_files_pass_two_independent_parsers(path: Path) -> None:
    """The hand-written practice-management files are what a clearinghouse would accept: pyx12
    validates them against the implementation-guide maps, LinuxForHealth x12 parses them (and
    checks, among others, that each CLM02 equals the sum of its line charges: it caught a wrong
    total in pm_three_claims)."""
    pytest.importorskip("pyx12")
    from x12_parsers import HAVE_LFH, lfh_claims, lfh_parse, pyx12_validate

    text = path.read_text()
    ok, report = pyx12_validate(text)
    assert ok, report
    if not HAVE_LFH:
        pytest.skip("LinuxForHealth x12 is not installed: pip install -e '.[test]'")
    [res] = lfh_parse(text)
    assert res["ok"], res.get("error")
    theirs = [c for m in res["models"] for c in lfh_claims(m)]
    ours = read_837(text)
    assert [c["id"] for c in theirs] == [c.claim_id for c in ours]
    assert [c["member"] for c in theirs] == [c.member_id for c in ours]


def test_one_member_id_for_two_people_the_birth_date_tells_them_apart() -> None:
    """A subscriber and a dependent billed under one member id on the same day (as family plans
    and the implementation guide's patient loop do): the encounter's patient block (birth date)
    picks the right claim, and a claim for the other person is not compared."""
    text = PM_P.read_text().replace("NM1*IL*1*ROE*RICHARD****MI*3GH4IJ5KL66", "NM1*IL*1*ROE*RICHARD****MI*1EG4TE5MK72")
    claims = read_837(text)
    assert [(c.claim_id, c.patient_birth.isoformat()) for c in claims] == [
        ("PA20417-1", "1951-02-03"), ("PA20417-2", "1951-02-03"), ("PA31102-1", "1948-09-19")]
    loaded = _pembro_on("2026-03-04")
    with pytest.raises(InputError, match="2 claims for member 1EG4TE5MK72"):
        read_posted_claim(text, loaded.encounter)  # no patient block: the birth date is unknown
    import yaml

    data = yaml.safe_load(PEMBRO.read_text())
    data.update(date_of_service="2026-03-04", patient={"name": {"last": "Doe", "first": "Jane"}, "birth_date": "1951-02-03",
                                                       "sex": "F"})
    data["payer"]["member_id"] = "1EG4TE5MK72"
    jane = validate(json.loads(json.dumps(data, default=str)))
    _lines, sel = read_posted_claim(text, jane.encounter)
    assert sel.claim_id == "PA20417-2" and sel.mismatch is None
    _pc, sel = select_claim(claims, jane.encounter, claim_id="PA31102-1")
    assert sel.mismatch and "RICHARD ROE" in sel.mismatch and "1948-09-19" in sel.mismatch
    result = audit_batch([jane], claims, search_fixes=False)
    assert [r.selection.claim_id for r in result.results] == ["PA20417-2"]


def test_provider_references_are_not_claim_references() -> None:
    """REF*1G / REF*G2 after a 2310 provider's NM1 identify the provider, not the claim: a
    replacement naming that value in REF*F8 must not supersede this claim."""
    original = PM_P.read_text()
    start = original.index("CLM*PA20417-2")
    cut = original.index("PRV*PE*PXC*207RH0003X~", start) + len("PRV*PE*PXC*207RH0003X~")
    text = original[:cut] + "\nREF*G2*PROV778~" + original[cut:]
    [c] = [c for c in read_837(text) if c.claim_id == "PA20417-2"]
    assert "G2" not in c.refs and c.refs == {"G1": "AUTH7781"}


def _family_file() -> str:
    """An 837P the way the implementation guide's example 1 is laid out: the subscriber's HL*22
    with child code 1, the dependent patient in a 2000C loop (HL*23, PAT, NM1*QC, N3, N4, DMG),
    units written as decimals (1.00), SV105 place of service. Two claims on one day: the
    subscriber's own (under her HL*22) and her dependent's (under the HL*23)."""
    segs = [
        "ISA*00*          *00*          *ZZ*PMSYS0042      *ZZ*CLEARHOUSE01   *260305*0910*^*00501*000003901*0*P*:",
        "GS*HC*PMSYS0042*CLEARHOUSE01*20260305*0910*3901*X*005010X222A1", "ST*837*0001*005010X222A1",
        "BHT*0019*00*0003901*20260305*0910*CH", "NM1*41*2*RIVERSIDE HEMATOLOGY ONCOLOGY*****46*PMSYS0042",
        "PER*IC*BILLING DEPT*TE*4105550188", "NM1*40*2*CLEARINGHOUSE INC*****46*CLEARHOUSE01",
        "HL*1**20*1", "PRV*BI*PXC*207RH0003X", "NM1*85*2*RIVERSIDE HEMATOLOGY ONCOLOGY PA*****XX*1234567893",
        "N3*2200 RIVER ROAD", "N4*TOWSON*MD*212044321", "REF*EI*521234567",
        "HL*2*1*22*0", "SBR*P*18*GRP5521******CI", "NM1*IL*1*DOE*JANE****MI*FAM000123", "N3*14 ELM STREET",
        "N4*BALTIMORE*MD*212181234", "DMG*D8*19510203*F", "NM1*PR*2*EXAMPLE COMMERCIAL PLAN*****PI*55123",
        "CLM*PA50001-1*780.00***11:B:1*Y*A*Y*Y", "HI*ABK:Z5112*ABF:C3411", "NM1*82*1*NGUYEN*LINDA****XX*1245319599",
        "LX*1", "SV1*HC:96413*410.00*UN*1.00*11**1:2", "DTP*472*D8*20260304",
        "LX*2", "SV1*HC:99214:25*370.00*UN*1.00*11**2", "DTP*472*D8*20260304",
        "HL*3*1*22*1", "SBR*P**GRP5521******CI", "NM1*IL*1*DOE*JANE****MI*FAM000123",
        "NM1*PR*2*EXAMPLE COMMERCIAL PLAN*****PI*55123",
        "HL*4*3*23*0", "PAT*19", "NM1*QC*1*DOE*SAM", "N3*14 ELM STREET", "N4*BALTIMORE*MD*212181234", "DMG*D8*20040611*M",
        "CLM*PA50002-1*410.00***11:B:1*Y*A*Y*Y", "HI*ABK:Z5112*ABF:C8190", "NM1*82*1*NGUYEN*LINDA****XX*1245319599",
        "LX*1", "SV1*HC:96413*410.00*UN*1.00*11**1:2", "DTP*472*D8*20260304",
    ]
    n = len(segs) - 2 + 1  # ST .. SE
    segs += [f"SE*{n}*0001", "GE*1*3901", "IEA*1*000003901"]
    return "~\n".join(segs) + "~\n"


def test_a_dependent_in_a_patient_loop_is_told_apart_from_the_subscriber() -> None:
    import yaml

    text = _family_file()
    pytest.importorskip("pyx12")
    from x12_parsers import HAVE_LFH, lfh_parse, pyx12_validate

    ok, report = pyx12_validate(text)
    assert ok, report
    if HAVE_LFH:
        [res] = lfh_parse(text)
        assert res["ok"], res.get("error")
    claims = read_837(text)
    assert [(c.claim_id, c.member_id, c.patient_name, str(c.patient_birth)) for c in claims] == [
        ("PA50001-1", "FAM000123", "JANE DOE", "1951-02-03"), ("PA50002-1", "FAM000123", "SAM DOE", "2004-06-11")]
    data = yaml.safe_load(PEMBRO.read_text())
    data.update(date_of_service="2026-03-04", patient={"name": {"last": "Doe", "first": "Sam"}, "birth_date": "2004-06-11"})
    data["payer"]["member_id"] = "FAM000123"
    sam = validate(json.loads(json.dumps(data, default=str)))
    _lines, sel = read_posted_claim(text, sam.encounter)
    assert sel.claim_id == "PA50002-1" and sel.mismatch is None
    _pc, sel = select_claim(claims, sam.encounter, claim_id="PA50001-1")
    assert sel.mismatch and "JANE DOE" in sel.mismatch
