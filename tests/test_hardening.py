"""Issue 17: every bad input gets an answer (exit 2 with a message, or a batch error record), no
contradiction is coded without a word, nothing raw reaches the terminal, conflicting flags are
errors. Each test here failed before the change it names."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from oncologic.batch import BatchOptions, run_batch
from oncologic.cli import main
from oncologic.load import InputError, LimitError, load_file, parse_document, validate
from oncologic.solver import code_encounters

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "x12" / "config.toml"

BASE = {
    "id": "E1", "setting": "office", "date_of_service": "2026-07-15",
    "payer": {"type": "medicare", "member_id": "1EG4TE5MK72"}, "diagnoses": ["C18.7"],
    "administrations": [{"id": "a1", "route": "iv_infusion", "start": "09:00", "stop": "10:00",
                         "drugs": [{"hcpcs": "J9263", "dose": {"value": 170, "unit": "mg"},
                                    "container": {"type": "single_dose"}}]}],
}
DEEP = '{"id":"D","x":' + "[" * 1000 + "]" * 1000 + "}"


def doc(**changes) -> dict:
    out = copy.deepcopy(BASE)
    out.update(changes)
    return out


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def write(tmp_path: Path, name: str, data) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def claim_of(data: dict):
    return code_encounters([validate(data)])[0]


def codes(claim) -> dict:
    return {f.code: f for f in claim.findings}


# -- 1. deep nesting and size limits ---------------------------------------------------------


@pytest.mark.parametrize("text", [DEEP, "id: D\nx: " + "[" * 1000 + "]" * 1000 + "\n"], ids=["json", "yaml"])
def test_deep_nesting_is_exit_2_with_the_limit_named(tmp_path, text):
    # was: RecursionError traceback
    res = run("solve", write(tmp_path, "deep.txt", text))
    assert res.exit_code == 2
    assert "max_depth" in res.stderr and "ONCOLOGIC_MAX_DEPTH" in res.stderr
    assert "Traceback" not in res.output


@pytest.mark.parametrize("workers", [0, 2])
def test_deep_nesting_is_one_error_record_in_a_batch_and_resume_goes_past_it(tmp_path, workers):
    # was: 0 of 24 records with --workers 0, 12 of 24 with 2; --resume stopped on the same line
    lines = [json.dumps(doc(id=f"E{i}")) for i in range(24)]
    lines[5] = DEEP
    src = write(tmp_path, "in.jsonl", "\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    run_batch(src, out, BatchOptions(workers=workers, chunk_size=4), progress=False)
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(recs) == 24 and [r["record"] for r in recs] == list(range(1, 25))
    assert recs[5]["error"]["kind"] == "too_large" and "max_depth" in recs[5]["error"]["problems"][0]["message"]
    assert all("claim" in r for i, r in enumerate(recs) if i != 5)
    # an interrupted run cut right after the deep line resumes past it
    keep = out.read_text().splitlines(keepends=True)[:6]
    out.write_text("".join(keep))
    run_batch(src, out, BatchOptions(workers=workers, chunk_size=4), resume=True, progress=False)
    assert [json.loads(x)["record"] for x in out.read_text().splitlines()] == list(range(1, 25))


def test_administrations_limit_on_solve_and_batch(tmp_path, monkeypatch):
    many = doc(administrations=[{"id": f"a{i}", "route": "iv_push", "start": "09:00",
                                 "drugs": [{"hcpcs": "J2405", "dose": {"value": 1, "unit": "mg"}}]} for i in range(1001)])
    path = write(tmp_path, "many.json", many)
    res = run("solve", path)  # was: no guard at all in solve (10,000 reached 10.9 GB)
    assert res.exit_code == 2
    assert "1,001 administrations" in res.stderr and "ONCOLOGIC_MAX_ADMINISTRATIONS" in res.stderr
    src = write(tmp_path, "in.jsonl", json.dumps(many) + "\n")
    out = tmp_path / "out.jsonl"
    run_batch(src, out, BatchOptions(), progress=False)
    err = json.loads(out.read_text())["error"]
    assert err["kind"] == "too_large"
    # the batch's message no longer sends users to `solve`
    assert "solve" not in err["problems"][0]["message"] and "--max-administrations" in err["problems"][0]["message"]
    monkeypatch.setenv("ONCOLOGIC_MAX_ADMINISTRATIONS", "2000")
    assert len(validate(many).encounter.administrations) == 1001


def test_drugs_and_input_size_limits(tmp_path, monkeypatch):
    bag = doc()
    bag["administrations"][0]["drugs"] = [{"hcpcs": "J2405", "dose": {"value": 1, "unit": "mg"}}] * 51
    with pytest.raises(LimitError, match=r"administrations\[0\]\.drugs: 51 drugs .*ONCOLOGIC_MAX_DRUGS"):
        validate(bag)
    monkeypatch.setenv("ONCOLOGIC_MAX_INPUT_BYTES", "1000")
    big = write(tmp_path, "big.json", doc(padding="x" * 2000))
    res = run("solve", big)
    assert res.exit_code == 2 and "max_input_bytes" in res.stderr and "ONCOLOGIC_MAX_INPUT_BYTES" in res.stderr
    res = run("explain", big)
    assert res.exit_code == 2 and "max_input_bytes" in res.stderr


def test_a_batch_line_past_the_size_limit_is_one_record(tmp_path, monkeypatch):
    monkeypatch.setenv("ONCOLOGIC_MAX_INPUT_BYTES", "2000")
    src = write(tmp_path, "in.jsonl", "\n".join([json.dumps(doc(id="A")), json.dumps(doc(id="B", pad="x" * 50_000)),
                                                 json.dumps(doc(id="C"))]) + "\n")
    out = tmp_path / "out.jsonl"
    run_batch(src, out, BatchOptions(), progress=False)
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r.get("encounter") for r in recs] == ["A", None, "C"]
    assert recs[1]["error"]["kind"] == "too_large" and recs[1]["source"].endswith(":2")


def test_limits_on_fhir_input_and_case_files(tmp_path):
    res = run("solve", "--from", "fhir", write(tmp_path, "b.json", '{"resourceType":"Bundle","entry":' + "[" * 200 + "]" * 200 + "}"))
    assert res.exit_code == 2 and "max_depth" in res.stderr
    nd = write(tmp_path, "b.ndjson", DEEP + "\n")
    out = tmp_path / "out.jsonl"
    run_batch(nd, out, BatchOptions(source_format="fhir"), progress=False)
    rec = json.loads(out.read_text())
    assert rec["error"]["kind"] == "too_large"
    cases = write(tmp_path, "deep_case.yaml", "- name: deep\n  encounter: " + "[" * 300 + "]" * 300 + "\n  expect: {clean: true}\n")
    res = run("test", cases)
    assert res.exit_code == 2 and "max_depth" in res.stderr


def test_yaml_aliases_cannot_expand_without_bound(tmp_path):
    text = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefg", "bcdefgh")) + "administrations: *h\n"
    with pytest.raises(LimitError, match="max_values"):
        parse_document(text)


# -- 2. time zones in the native contract ----------------------------------------------------


def test_offsets_are_converted_with_the_encounter_zone_or_rejected():
    data = doc()
    data["administrations"][0].update(start="10:00+05:00", stop="10:30Z")
    with pytest.raises(InputError, match=r"administrations\[0\]\.start: .*UTC offset.*time_zone"):
        validate(data)
    data["time_zone"] = "UTC"
    adm = validate(data).encounter.administrations[0]
    assert (adm.start, adm.stop) == ("2026-07-15T05:00", "2026-07-15T10:30")  # 330 minutes, not 30


# -- 3. contradictions -----------------------------------------------------------------------


def test_duplicate_keys_are_rejected_in_json_and_yaml():
    with pytest.raises(InputError, match="duplicate key 'id'"):
        parse_document('{"id": "E1", "setting": "office", "id": "E2"}')
    with pytest.raises(InputError, match=r"line 2 .*duplicate key 'id'"):
        parse_document("id: E1\nid: E2\n")
    # a YAML merge may still be overridden (the case files' idiom)
    assert parse_document("base: &b {x: 1}\nover:\n  <<: *b\n  x: 2\n")["over"] == {"x": 2}


def test_start_900_names_start():
    # was: read as 15:00 and the error blamed stop
    with pytest.raises(InputError) as err:
        parse_and_validate = validate(parse_document(
            "id: E\nsetting: office\ndate_of_service: 2026-07-15\ndiagnoses: [C18.7]\n"
            "administrations:\n  - {id: a, route: iv_infusion, start: 900, stop: '10:00'}\n"))
        del parse_and_validate
    assert err.value.problems[0][0] == "administrations[0].start"
    assert "900 is a number" in err.value.problems[0][1]
    # an unquoted 09:00 is still the clock time
    enc = validate(parse_document("id: E\nsetting: office\ndate_of_service: 2026-07-15\ndiagnoses: [C18.7]\n"
                                  "administrations:\n  - {id: a, route: iv_push, start: 09:00}\n")).encounter
    assert enc.administrations[0].start == "09:00"


def test_authorization_window_and_empty_access_are_rejected():
    with pytest.raises(InputError, match=r"authorizations\[0\]\.end: the authorization ends"):
        validate(doc(authorizations=[{"number": "A1", "codes": ["J9263"], "start": "2026-08-01", "end": "2026-07-01"}]))
    data = doc()
    data["administrations"][0]["access"] = ""
    with pytest.raises(InputError, match=r"administrations\[0\]\.access: an access id"):
        validate(data)


def _first_admin(**changes) -> dict:
    data = doc()
    data["administrations"][0].update(changes)
    return data


def _first_drug(**changes) -> dict:
    data = doc()
    data["administrations"][0]["drugs"][0].update(changes)
    return data


@pytest.mark.parametrize("data,code,rule", [
    (_first_admin(stop="09:00"), "INFUSION_ZERO_MINUTES", "consistency.zero_minute_infusion"),
    (_first_admin(start="2027-05-14T09:00", stop="2027-05-14T10:00"), "ADMIN_DATE_FAR", "consistency.far_from_date_of_service"),
    (_first_drug(container={"type": "single_dose", "size": {"value": 50, "unit": "mg"}, "count": 10},
                 discarded={"value": 10, "unit": "mg"}), "CONTAINERS_UNACCOUNTED", "consistency.containers_unaccounted"),
], ids=["zero-minutes", "303-days-later", "vials-unaccounted"])
def test_contradictions_are_error_findings(data, code, rule):
    claim = claim_of(data)
    found = codes(claim)
    assert code in found and found[code].severity == "error" and found[code].why.rule == rule
    assert found[code].why.from_ == ["a1"] or found[code].why.from_[0].startswith("a1")
    assert not claim.clean  # was: a clean claim (a 2027-dated line on a 2026 claim, a 0-minute "push")


def test_a_pump_disconnect_days_later_belongs_to_the_encounter():
    # the 46-hour 5-FU pump is disconnected and the port flushed on day 3: not a far-away date
    data = _first_admin(stop="10:00", pump=None)
    data["administrations"] += [
        {"id": "pump", "route": "iv_infusion", "start": "10:00", "stop": "2026-07-17T08:00", "pump": "portable",
         "drugs": [{"hcpcs": "J9190", "dose": {"value": 2400, "unit": "mg"}}]},
        {"id": "flush", "route": "port_flush", "start": "2026-07-17T08:30",
         "drugs": [{"hcpcs": "J1644", "dose": {"value": 500, "unit": "units"}}]},
    ]
    assert "ADMIN_DATE_FAR" not in codes(claim_of(data))
    without_pump = copy.deepcopy(data)
    del without_pump["administrations"][1]
    assert codes(claim_of(without_pump))["ADMIN_DATE_FAR"].why.from_[0] == "flush"
    much_later = copy.deepcopy(data)
    much_later["administrations"][2]["start"] = "2027-05-14T09:00"
    assert codes(claim_of(much_later))["ADMIN_DATE_FAR"].why.from_[0] == "flush"


def test_container_in_ml_against_a_dose_in_mg_is_a_finding():
    claim = claim_of(_first_drug(container={"type": "single_dose", "size": {"value": 20, "unit": "mL"}},
                                 discarded={"value": 5, "unit": "mg"}))
    f = codes(claim)["CONTAINER_UNIT_MISMATCH"]
    assert f.why.rule == "consistency.container_unit_mismatch" and "a volume (mL)" in f.message and "a mass (mg)" in f.message


def test_five_day_infusion_outside_a_pump():
    chemo = claim_of(_first_admin(start="2026-07-15T09:00", stop="2026-07-20T09:00"))
    assert codes(chemo)["LONG_INFUSION_NO_PUMP"].severity == "error"
    data = _first_admin(start="2026-07-15T09:00", stop="2026-07-20T09:00")
    data["administrations"][0]["drugs"] = [{"hcpcs": "J2405", "dose": {"value": 8, "unit": "mg"}}]
    ther = claim_of(data)  # was: 96365 + 119 x 96366 on a clean claim
    assert codes(ther)["INFUSION_DAYS_NO_PUMP"].severity == "error" and not ther.clean
    data["administrations"][0]["pump"] = "portable"
    assert "INFUSION_DAYS_NO_PUMP" not in codes(claim_of(data))


@pytest.mark.parametrize("where,change,path", [
    ("admin", {"route": "intralesional", "lesions": 2**40}, "administrations[0].lesions"),
    ("drug", {"container": {"type": "single_dose", "size": {"value": 100, "unit": "mg"}, "count": 2**40}},
     "administrations[0].drugs[0].container.count"),
    ("drug", {"container": {"type": "single_dose", "size": {"value": 2_000_000, "unit": "mg"}, "count": 5000}},
     "administrations[0].drugs[0].container"),
    ("admin", {"stop": "9999-12-31T23:59"}, "administrations[0].stop"),
    ("enc", {"treatment_plan": {"cycle": 2**63}}, "treatment_plan.cycle"),
    ("enc", {"authorizations": [{"number": "A", "units": 2**40}]}, "authorizations[0].units"),
], ids=["lesions", "count", "opened", "year-9999", "cycle", "auth-units"])
def test_numbers_past_the_engine_range_are_input_errors(tmp_path, where, change, path):
    # was: OverflowError traceback (a clingo integer is 32 bits), or a wrapped product in the rules
    data = _first_admin(**change) if where == "admin" else _first_drug(**change) if where == "drug" else doc(**change)
    res = run("solve", write(tmp_path, "n.json", data))
    assert res.exit_code == 2, res.output
    assert path + ":" in res.stderr and "Traceback" not in res.output


def test_a_normal_encounter_gets_none_of_the_consistency_findings():
    claim = claim_of(doc())
    assert not {c for c in codes(claim)} & {"INFUSION_ZERO_MINUTES", "INFUSION_DAYS_NO_PUMP", "ADMIN_DATE_FAR",
                                            "CONTAINER_UNIT_MISMATCH", "CONTAINERS_UNACCOUNTED"}


# -- 4. terminal safety ----------------------------------------------------------------------


def test_control_characters_never_reach_the_terminal(tmp_path):
    data = doc(id="E\x1b[31mRED\x07")
    data["administrations"][0]["drugs"][0]["name"] = "ox\x1b]0;pwn\x07"
    path = write(tmp_path, "ctrl.json", data)
    for args in (("solve", path), ("explain", path, "--line", "1")):
        res = run(*args)
        assert res.exit_code == 0
        assert "\x1b" not in res.output and "\x07" not in res.output
        assert "\\x1b" in res.output
    bad = copy.deepcopy(data)
    bad["administrations"][0]["route"] = "iv\x1b[2Jpush"
    res = run("solve", write(tmp_path, "bad.json", bad))
    assert res.exit_code == 2 and "\x1b" not in res.stderr


def test_x12_member_id_with_delimiters_is_an_error(tmp_path):
    data = doc()
    data["payer"]["member_id"] = "1EG4*TE5~MK72"
    res = run("solve", write(tmp_path, "m.json", data), "--format", "x12-837p", "--config", CONFIG,
              "--zero-charges", "--placeholders")
    assert res.exit_code == 2 and "payer.member_id" in res.stderr and "delimiters" in res.stderr


# -- 5. conflicting flags --------------------------------------------------------------------


def test_conflicting_flags_are_errors(tmp_path):
    path = write(tmp_path, "e.json", doc())
    for args, words in [
        (("solve", path, "--json", "--format", "x12-837p"), "--json and --format"),
        (("solve", path, "--config", CONFIG), "--config"),
        (("solve", path, "--json", "--config", CONFIG), "--config"),
        (("solve", path, "--policy", ""), "empty name"),
        (("batch", path, "--policy", "", "--workers", "0"), "empty name"),
        (("explain", path, "--policy", ""), "empty name"),
        (("rules", "--family", "nosuch"), "family"),
        (("solve", path, "--switch", "nosuch"), "unknown policy switch"),
        (("batch", path, "--switch", "nosuch", "--workers", "0"), "unknown policy switch"),
    ]:
        res = run(*args)
        assert res.exit_code == 2, args
        assert words in res.stderr, (args, res.stderr)


def test_help_lists_policies_and_switches():
    for cmd in ("solve", "batch", "explain"):
        text = run(cmd, "--help").output
        assert "commercial_ibx_style" in text and "medicare" in text
        assert "label_hydration_integral" in text and "distinct_modifier_59" in text


def test_explain_reads_fhir():
    res = run("explain", "--from", "fhir", ROOT / "examples" / "fhir" / "seed_session.bundle.json", "--line", "1")
    assert res.exit_code == 0 and "line 1:" in res.output


# -- 6. messages in words --------------------------------------------------------------------


def test_messages_in_words(tmp_path):
    path = write(tmp_path, "e.json", doc())
    cfg = write(tmp_path, "c.toml", 'interchange = "x"\n')
    res = run("solve", path, "--format", "x12-837p", "--config", cfg)
    assert res.exit_code == 2 and "interchange: this section is a table" in res.stderr  # was: "unknown section"
    site = write(tmp_path, "s.toml", 'payers = "x"\n')
    res = run("solve", path, "--site", site)
    assert res.exit_code == 2 and "payers: this is a table" in res.stderr  # was: "Input should be a valid dictionary"
    res = run("solve", path, "--format", "x12-837i")
    assert res.exit_code == 2 and "837I is the institutional claim" in res.stderr  # was: "no revenue code"
    src = tmp_path / "ctrl.jsonl"
    src.write_bytes(b"\x01\x02\x1b\xff\xfe garbage\n")
    out = tmp_path / "out.jsonl"
    run_batch(src, out, BatchOptions(), progress=False)  # was: an "engine" record, JSONDecodeError
    rec = json.loads(out.read_text())
    assert rec["error"]["kind"] == "input" and "control bytes" in rec["error"]["problems"][0]["message"]


def test_load_file_of_the_examples_still_works():
    assert load_file(str(ROOT / "examples" / "seed_session.yaml")).encounter.id == "ENC-SEED-001"
