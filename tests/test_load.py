"""Reading and validating encounters: field paths, documents, warnings, NDC resolution."""

from __future__ import annotations

import copy

import pytest

from oncologic import refdata
from oncologic.load import InputError, load_file, parse_document, validate

BASE = {
    "id": "E1",
    "setting": "office",
    "date_of_service": "2026-03-04",
    "diagnoses": ["C34.11"],
    "administrations": [
        {"id": "a1", "route": "iv_infusion", "start": "09:00", "stop": "10:00",
         "drugs": [{"hcpcs": "J9271", "name": "pembrolizumab", "dose": {"value": 200, "unit": "mg"}}]}
    ],
}


def doc(**changes):
    d = copy.deepcopy(BASE)
    d.update(changes)
    return d


def adm(**changes):
    a = copy.deepcopy(BASE["administrations"][0])
    a.update(changes)
    return a


def problems(data):
    with pytest.raises(InputError) as info:
        validate(data, "x.yaml")
    return info.value


def test_valid_document_passes():
    loaded = validate(doc())
    assert loaded.warnings == []
    assert loaded.encounter.administrations[0].drugs[0].hcpcs == "J9271"


@pytest.mark.parametrize(
    "data, path, words",
    [
        (doc(administrations=[adm(stop="08:00")]), "administrations[0].stop", "before start"),
        (doc(administrations=[adm(route="iv_drip")]), "administrations[0].route", "iv_drip"),
        (doc(administrations=[adm(drugs=[{"hcpcs": "J9271", "dose": {"value": 200}}])]), "administrations[0].drugs[0].dose.unit", "required"),
        (doc(administrations=[adm(drugs=[{"hcpcs": "J9271", "ndc": "0006-3026"}])]), "administrations[0].drugs[0].ndc", "NDC"),
        (doc(diagnoses=["C34.11", "ABC"]), "diagnoses[1]", "ICD-10-CM"),
        (doc(administrations=[adm(), adm(start="10:00", stop="10:30")]), "administrations[1].id", "duplicate id"),
        (doc(administrations=[adm(drugs=[{"hcpcs": "J9876"}])]), "administrations[0].drugs[0].hcpcs", "not in the reference data"),
        (doc(administrations=[adm(drugs=[{"name": "x"}])]), "administrations[0].drugs[0]", "needs hcpcs"),
        (doc(administrations=[adm(start="25:00")]), "administrations[0].start", "HH:MM"),
    ],
)
def test_bad_input_names_the_field_path(data, path, words):
    err = problems(data)
    text = err.render()
    assert text.startswith(f"x.yaml: {path}: "), text
    assert words in text
    assert "Traceback" not in text


def test_several_problems_are_all_reported():
    err = problems(doc(setting="clinic", administrations=[adm(route="iv_drip")]))
    paths = [p for p, _ in err.problems]
    assert "setting" in paths and "administrations[0].route" in paths


def test_unknown_hcpcs_accepted_with_kind():
    loaded = validate(doc(administrations=[adm(drugs=[{"hcpcs": "J9876", "kind": "chemotherapy", "dose": {"value": 1, "unit": "mg"}}])]))
    assert loaded.encounter.administrations[0].drugs[0].kind == "chemotherapy"


def test_ndc_mapping_to_one_code_fills_in_hcpcs():
    ndc, codes = next((k, v) for k, v in sorted(refdata.ndc_codes().items()) if len(v) == 1)
    hyphenated = f"{ndc[:5]}-{ndc[5:9]}-{ndc[9:]}"
    loaded = validate(doc(administrations=[adm(drugs=[{"ndc": hyphenated, "dose": {"value": 1, "unit": "mg"}}])]))
    assert loaded.resolved == {(0, 0): codes[0]}


def test_ndc_filed_under_several_codes_needs_hcpcs():
    ndc, codes = next((k, v) for k, v in sorted(refdata.ndc_codes().items()) if len(v) > 1)
    err = problems(doc(administrations=[adm(drugs=[{"ndc": ndc, "dose": {"value": 1, "unit": "mg"}}])]))
    assert "administrations[0].drugs[0].ndc" in err.render() and "several HCPCS codes" in err.render()


def test_unknown_fields_are_warnings_with_paths():
    data = doc(nurse="Kim", administrations=[adm(bag="red", drugs=[{"hcpcs": "J9271", "colour": "x", "dose": {"value": 1, "unit": "mg"}}])])
    loaded = validate(data)
    assert loaded.warnings == [
        "nurse: unknown field ignored",
        "administrations[0].bag: unknown field ignored",
        "administrations[0].drugs[0].colour: unknown field ignored",
    ]


@pytest.mark.parametrize("value", [[1, 2], "just text", 42, None])
def test_non_mapping_document_rejected(value):
    err = problems(value)
    assert err.problems[0][0] == "(document)"


def test_json_and_yaml_documents():
    assert parse_document('{"id": "E1"}') == {"id": "E1"}
    assert parse_document("id: E1\nsetting: office\n") == {"id": "E1", "setting": "office"}
    # a YAML flow mapping also opens with a brace
    assert parse_document("{id: E1, setting: office}") == {"id": "E1", "setting": "office"}


def test_json_syntax_error_names_line_and_column():
    with pytest.raises(InputError) as info:
        parse_document('{"id": "E1",\n "setting": }', "bad.json")
    text = info.value.render()
    assert text.startswith("bad.json: (document): invalid JSON at line 2")


def test_yaml_syntax_error_names_line():
    with pytest.raises(InputError) as info:
        parse_document("id: E1\nadministrations: [a, b\nsetting: office\n", "bad.yaml")
    assert "bad.yaml: (document): invalid YAML at line" in info.value.render()


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError) as info:
        load_file(str(tmp_path / "nope.yaml"))
    assert "(file): cannot read" in info.value.render()


def test_binary_file_is_an_input_error(tmp_path):
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError) as info:
        load_file(str(p))
    assert "(file)" in info.value.render()
