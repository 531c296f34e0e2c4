"""The oncologic command: exit codes, field paths without tracebacks, warnings, schema, determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from oncologic.cli import main

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples" / "seed_session.yaml"


def run(*args, input=None):
    runner = CliRunner()
    return runner.invoke(main, list(args), input=input, catch_exceptions=False)


def test_solve_seed_prints_a_table_with_reasons():
    res = run("solve", str(SEED))
    assert res.exit_code == 0, res.output
    assert "96413" in res.stdout and "admin.initial" in res.stdout
    assert "Considered and not billed:" in res.stdout and "admin.hour_not_reached" in res.stdout


def test_solve_json_is_the_contract_and_byte_identical():
    first = run("solve", str(SEED), "--json")
    second = run("solve", str(SEED), "--json")
    assert first.exit_code == 0
    assert first.stdout == second.stdout
    claim = json.loads(first.stdout)
    assert set(claim) >= {"encounter", "setting", "lines", "not_billed", "findings", "clean"}
    for item in claim["lines"] + claim["not_billed"] + claim["findings"]:
        assert set(item["why"]) == {"rule", "text", "from"}


def test_json_identical_across_processes_and_hash_seeds():
    outs = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        proc = subprocess.run([sys.executable, "-m", "oncologic.cli", "solve", str(SEED), "--json"],
                              capture_output=True, env=env, cwd=ROOT, timeout=120)
        assert proc.returncode == 0, proc.stderr.decode()
        outs.append(proc.stdout)
    assert outs[0] == outs[1]


def test_input_order_does_not_change_the_claim(tmp_path):
    doc = yaml.safe_load(SEED.read_text())
    doc["administrations"] = list(reversed(doc["administrations"]))
    shuffled = tmp_path / "shuffled.yaml"
    shuffled.write_text(yaml.safe_dump(doc))
    a = json.loads(run("solve", str(SEED), "--json").stdout)
    b = json.loads(run("solve", str(shuffled), "--json").stdout)
    assert a == b


def test_stdin_dash():
    res = run("solve", "-", "--json", input=SEED.read_text())
    assert res.exit_code == 0
    assert json.loads(res.stdout)["encounter"] == "ENC-SEED-001"


BAD = {
    "stop before start": ("administrations:\n  - {id: a1, route: iv_infusion, start: '10:00', stop: '09:00', drugs: [{hcpcs: J9271, dose: {value: 1, unit: mg}}]}\n",
                          "administrations[0].stop"),
    "unknown route": ("administrations:\n  - {id: a1, route: iv_drip, start: '10:00'}\n", "administrations[0].route"),
    "dose without unit": ("administrations:\n  - {id: a1, route: iv_push, start: '10:00', drugs: [{hcpcs: J9271, dose: {value: 1}}]}\n",
                          "administrations[0].drugs[0].dose.unit"),
    "malformed ndc": ("administrations:\n  - {id: a1, route: iv_push, start: '10:00', drugs: [{hcpcs: J9271, ndc: '123-45'}]}\n",
                      "administrations[0].drugs[0].ndc"),
    "malformed icd-10": ("", "diagnoses[0]"),
    "duplicate ids": ("administrations:\n  - {id: a1, route: iv_push, start: '10:00', drugs: [{hcpcs: J1100, dose: {value: 1, unit: mg}}]}\n"
                      "  - {id: a1, route: iv_push, start: '11:00', drugs: [{hcpcs: J1100, dose: {value: 1, unit: mg}}]}\n",
                      "administrations[1].id"),
    "unknown hcpcs without kind": ("administrations:\n  - {id: a1, route: iv_push, start: '10:00', drugs: [{hcpcs: J9876, dose: {value: 1, unit: mg}}]}\n",
                                   "administrations[0].drugs[0].hcpcs"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_exits_2_with_field_path_and_no_traceback(tmp_path, name):
    body, path = BAD[name]
    dx = "[XYZ]" if name == "malformed icd-10" else "[C34.11]"
    f = tmp_path / "enc.yaml"
    f.write_text(f"id: E1\nsetting: office\ndate_of_service: 2026-03-04\ndiagnoses: {dx}\n" + body)
    res = run("solve", str(f))
    assert res.exit_code == 2
    assert f"{f}: {path}: " in res.stderr
    assert "Traceback" not in res.output and res.stdout == ""


@pytest.mark.parametrize(
    "text, words",
    [
        ('{"id": "E1", "setting": }', "invalid JSON at line 1"),
        ("id: E1\nsetting: [office\n", "invalid YAML at line"),
        ("- just\n- a list\n", "an encounter is a mapping"),
        ("", "an encounter is a mapping"),
        ("id: E1\nsetting: office\ndate_of_service: 2026-02-30\ndiagnoses: [C61]\n", "invalid YAML value"),
    ],
)
def test_unreadable_documents_exit_2(tmp_path, text, words):
    f = tmp_path / "doc.txt"
    f.write_text(text)
    res = run("solve", str(f))
    assert res.exit_code == 2
    assert "(document)" in res.stderr and words in res.stderr
    assert "Traceback" not in res.output


def test_missing_file_exits_2():
    res = run("solve", "/nonexistent/encounter.yaml")
    assert res.exit_code == 2
    assert "(file): cannot read" in res.stderr


def test_bad_input_in_a_subprocess_has_no_traceback(tmp_path):
    f = tmp_path / "enc.json"
    f.write_text(json.dumps({"id": "E1", "setting": "office", "date_of_service": "2026-03-04", "diagnoses": ["C34.11"],
                             "administrations": [{"id": "a1", "route": "iv_infusion", "start": "10:00", "stop": "09:00"}]}))
    proc = subprocess.run([sys.executable, "-m", "oncologic.cli", "solve", str(f)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert "administrations[0].stop" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_fields_warn_on_stderr(tmp_path):
    doc = yaml.safe_load(SEED.read_text())
    doc["nurse"] = "Kim"
    doc["administrations"][0]["bag_colour"] = "red"
    f = tmp_path / "extra.yaml"
    f.write_text(yaml.safe_dump(doc))
    res = run("solve", str(f), "--json")
    assert res.exit_code == 0
    assert "warning: nurse: unknown field ignored" in res.stderr
    assert "warning: administrations[0].bag_colour: unknown field ignored" in res.stderr
    json.loads(res.stdout)  # the warnings do not pollute the JSON


def test_schema_is_valid_json_schema_and_accepts_the_examples():
    jsonschema = pytest.importorskip("jsonschema")
    res = run("schema")
    assert res.exit_code == 0
    schema = json.loads(res.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    enc_schema = dict(schema["$defs"]["Encounter"])
    enc_schema["$defs"] = {**enc_schema.get("$defs", {})}
    root = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/Encounter"}
    validator = jsonschema.Draft202012Validator(root, format_checker=None)
    for example in sorted((ROOT / "examples").glob("*.yaml")):
        doc = json.loads(json.dumps(yaml.safe_load(example.read_text()), default=str))
        errors = list(validator.iter_errors(doc))
        assert not errors, f"{example.name}: {errors[0].message}"
    claim = json.loads(run("solve", str(SEED), "--json").stdout)
    claim_root = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/Claim"}
    assert not list(jsonschema.Draft202012Validator(claim_root).iter_errors(claim))


def test_unknown_switch_is_rejected_with_exit_2():
    from click.testing import CliRunner

    from oncologic.cli import main

    result = CliRunner().invoke(main, ["solve", str(ROOT / "examples" / "seed_session.yaml"), "--switch", "no_such_switch"])
    assert result.exit_code == 2
    assert "no_such_switch" in result.output


def test_strict_mode_error_in_a_user_rule_file_exits_2_without_traceback(tmp_path):
    from click.testing import CliRunner

    from oncologic.cli import main

    rule = tmp_path / "arith.lp"
    rule.write_text('my_units(E,U) :- encounter(E), U = "ten" + 1.\n'
                    '%@rule user.arith\n%@text "x"\nfinding(E,"X",info,enc) :- my_units(E,U).\n')
    result = CliRunner().invoke(main, ["solve", str(ROOT / "examples" / "seed_session.yaml"), "--rules", str(rule)])
    assert result.exit_code == 2
    assert "operation undefined" in result.output
    assert "Traceback" not in result.output


def test_rule_and_fact_folders_are_found_through_refdata_only():
    """A regular `pip install .` ships encodings/ and facts/ under oncologic/_data: a module that
    builds their path from its own location works in the checkout and breaks in the install
    (`--policy: unknown policy profile 'medicare' (valid: )` was the README's first command)."""
    import re

    bad = []
    for path in sorted((ROOT / "oncologic").rglob("*.py")):
        if path.name == "refdata.py":
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"__file__\)?[^\n]*\"(encodings|facts)\"", text) or re.search(r"parent\s*/\s*\"(encodings|facts)\"", text):
            bad.append(str(path.relative_to(ROOT)))
    assert bad == [], bad
    from oncologic import refdata
    from oncologic.cli import policy_names

    assert "medicare" in policy_names() and all((refdata.POLICIES / f"{n}.lp").is_file() for n in policy_names())
