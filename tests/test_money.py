"""Money on the claim (issue 14): charges from the site's charge master and formulary, the expected
Medicare payment of each line (ASP limit, IRA coinsurance, OPPS Addendum B, packaging, sequestration,
a site fee schedule) and the lines at stake.

Every expected amount is computed here by hand from the shipped fact rows (the agency files as
imported), never read back from the engine's output."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from oncologic.formats.site import load_site
from oncologic.load import InputError, validate
from oncologic.solver import code_one

ROOT = Path(__file__).resolve().parents[1]
FACTS = ROOT / "facts"
CENT = Decimal("0.01")


def _fact(file: str, pred: str, code: str) -> int | None:
    """The integer value of ``pred(V,"code",X)`` in a shipped fact file (None when absent)."""
    m = re.search(rf'^{pred}\("[^"]+","{code}",(-?\d+)\)\.$', (FACTS / file).read_text(), re.M)
    return int(m.group(1)) if m else None


def _opps_si(file: str, code: str) -> str:
    m = re.search(rf'^opps_si\("[^"]+","{code}","([A-Z0-9]+)"\)\.$', (FACTS / file).read_text(), re.M)
    assert m, code
    return m.group(1)


def _usd(mills: Decimal) -> Decimal:
    return (Decimal(mills) / 1000).quantize(CENT, rounding=ROUND_HALF_UP)


def _pct(amount: Decimal, thousandths: int) -> Decimal:
    return (amount * thousandths / 100000).quantize(CENT, rounding=ROUND_HALF_UP)


def _site(tmp_path: Path, charges: str | None = None, fees: str | None = None, formulary: str | None = None):
    toml = ""
    if charges is not None:
        (tmp_path / "charges.csv").write_text("code,charge\n" + charges)
        toml += 'charges = "charges.csv"\n'
    if fees is not None:
        (tmp_path / "fees.csv").write_text("code,allowed\n" + fees)
        toml += 'fee_schedule = "fees.csv"\n'
    if formulary is not None:
        (tmp_path / "f.csv").write_text("system,code,hcpcs,ndc,name,container_type,container_size,container_unit,charge_per_unit\n"
                                        + formulary)
        toml += 'formulary = "f.csv"\n'
    (tmp_path / "site.toml").write_text(toml)
    return load_site(tmp_path / "site.toml")


def _office(day: str, payer: str = "medicare", drugs=None, services=()) -> dict:
    return {
        "id": "MONEY-1", "setting": "office", "date_of_service": day,
        "payer": {"name": "Medicare Part B", "type": payer, "member_id": "1EG4TE5MK73"},
        "diagnoses": ["C50.911", "C79.51"],
        "administrations": [{"id": "inj", "route": "subcutaneous", "start": "10:00",
                             "drugs": drugs or [{"hcpcs": "J0897", "dose": {"value": 120, "unit": "mg"},
                                                 "container": {"type": "single_dose", "size": {"value": 120, "unit": "mg"}}}]}],
        "services": list(services),
    }


def _line(claim, code):
    return next(ln for ln in claim.lines if ln.code == code)


def test_office_drug_at_the_asp_limit_with_the_ira_reduced_coinsurance_and_sequestration() -> None:
    # January 2026 pricing file: J0897 (denosumab, 1 mg) payment limit and inflation-adjusted coinsurance
    limit = _fact("asp_2026q1.lp", "asp_limit", "J0897")
    coins_pct = _fact("asp_2026q1.lp", "asp_coinsurance", "J0897")
    assert limit is not None and coins_pct is not None and coins_pct < 20000
    claim = code_one(validate(_office("2026-02-10")))
    ln = _line(claim, "J0897")
    assert ln.units == 120
    allowed = _usd(Decimal(limit) * 120)
    coins = _pct(allowed, coins_pct)
    seq = _pct(allowed - coins, 2000)
    p = ln.payment
    assert (p.allowed, p.coinsurance, p.sequestration, p.program_payment) == (
        f"{allowed:.2f}", f"{coins:.2f}", f"{seq:.2f}", f"{allowed - coins - seq:.2f}")
    assert "ASP file 2026Q1" in p.basis and "inflation-adjusted" in p.basis and "Sequestration 2 %" in p.basis
    # the administration code needs the Physician Fee Schedule: no guess
    admin = _line(claim, "96372").payment
    assert admin.allowed is None and admin.basis.startswith("fee schedule not loaded")
    assert claim.payment.program_payment == p.program_payment  # only the drug line is priced
    assert "1 of 2 line(s) priced" in claim.payment.basis


def test_standard_coinsurance_of_a_drug_without_a_reduced_one() -> None:
    limit = _fact("asp_2026q1.lp", "asp_limit", "J9271")
    assert _fact("asp_2026q1.lp", "asp_coinsurance", "J9271") is None  # the standard 20 %
    drugs = [{"hcpcs": "J9271", "dose": {"value": 200, "unit": "mg"},
              "container": {"type": "single_dose", "size": {"value": 100, "unit": "mg"}}}]
    doc = _office("2026-03-04", drugs=drugs)
    doc["administrations"][0].update(route="iv_infusion", start="09:00", stop="09:40")
    p = _line(code_one(validate(doc)), "J9271").payment
    allowed = _usd(Decimal(limit) * 200)
    coins = _pct(allowed, 20000)
    assert p.allowed == f"{allowed:.2f}" and p.coinsurance == f"{coins:.2f}"
    assert p.sequestration == f"{_pct(allowed - coins, 2000):.2f}"
    assert "Coinsurance 20 %" in p.basis


def test_no_price_of_another_quarter_and_not_for_other_payers() -> None:
    # no April 2026 pricing file is shipped: the line has no expected payment, and says why
    p = _line(code_one(validate(_office("2026-05-12"))), "J0897").payment
    assert p.allowed is None and "no Medicare Part B payment limit" in p.basis
    p = _line(code_one(validate(_office("2026-02-10", payer="commercial"))), "J0897").payment
    assert p.allowed is None and "not traditional Medicare" in p.basis


def test_sequestration_follows_the_date_of_service(tmp_path: Path) -> None:
    site = _site(tmp_path, fees="96372,25.00\nJ0897,30.000\n")
    for day, pct in (("2021-06-01", 0), ("2022-05-10", 1000), ("2022-08-01", 2000)):
        claim = code_one(validate(_office(day), site=site))
        p = _line(claim, "96372").payment
        allowed = Decimal("25.00")
        coins = _pct(allowed, 20000)
        assert p.allowed == "25.00" and p.coinsurance == f"{coins:.2f}"
        assert p.sequestration == f"{_pct(allowed - coins, pct):.2f}", day
        assert "site's fee schedule" in p.basis


def test_site_fee_schedule_prices_office_administration_codes(tmp_path: Path) -> None:
    site = _site(tmp_path, fees="96372,24.310\n")
    claim = code_one(validate(_office("2026-02-10"), site=site))
    p = _line(claim, "96372").payment
    assert p.allowed == "24.31" and p.coinsurance == "4.86" and p.sequestration == f"{_pct(Decimal('24.31') - Decimal('4.86'), 2000):.2f}"
    # the drug keeps its ASP price: a site fee schedule never overrides the CMS payment limit
    assert "ASP file 2026Q1" in _line(claim, "J0897").payment.basis
    # a site fee schedule without the code: says so
    site2 = _site(tmp_path, fees="99214,100.00\n")
    p2 = _line(code_one(validate(_office("2026-02-10"), site=site2)), "96372").payment
    assert p2.allowed is None and "not in the site's fee schedule" in p2.basis


FACILITY = {
    "id": "MONEY-FAC", "setting": "facility", "date_of_service": "2025-11-05",
    "payer": {"name": "Medicare Part B", "type": "medicare", "member_id": "1EG4TE5MK73"},
    "diagnoses": ["C50.911", "C79.51"],
    "administrations": [
        {"id": "pembro", "route": "iv_infusion", "start": "09:00", "stop": "09:40",
         "drugs": [{"hcpcs": "J9271", "dose": {"value": 200, "unit": "mg"},
                    "container": {"type": "single_dose", "size": {"value": 100, "unit": "mg"}}}]},
        {"id": "dmab", "route": "subcutaneous", "start": "10:00",
         "drugs": [{"hcpcs": "J0897", "dose": {"value": 120, "unit": "mg"},
                    "container": {"type": "single_dose", "size": {"value": 120, "unit": "mg"}}}]},
        {"id": "ondan", "route": "iv_push", "start": "08:45",
         "drugs": [{"hcpcs": "J2405", "dose": {"value": 8, "unit": "mg"}, "container": {"type": "multi_dose"}}]},
    ],
}


def test_hospital_outpatient_lines_from_addendum_b(tmp_path: Path) -> None:
    f = "opps_2025q4.lp"
    claim = code_one(validate(FACILITY))
    # 96413: status S, the national payment rate; coinsurance 20 % (the minimum unadjusted copayment)
    assert _opps_si(f, "96413") == "S"
    rate = _usd(Decimal(_fact(f, "opps_rate", "96413")))
    p = _line(claim, "96413").payment
    coins = _pct(rate, 20000)
    assert f"{coins:.2f}" == f"{_usd(Decimal(_fact(f, 'opps_min_copay', '96413'))):.2f}"
    assert (p.allowed, p.coinsurance, p.sequestration) == (f"{rate:.2f}", f"{coins:.2f}", f"{_pct(rate - coins, 2000):.2f}")
    assert "Addendum B 2025Q4" in p.basis and "status S" in p.basis
    # J0897: status K with the IRA coinsurance percentage of the Addendum
    ira = _fact(f, "opps_coinsurance", "J0897")
    allowed = _usd(Decimal(_fact(f, "opps_rate", "J0897")) * 120)
    p = _line(claim, "J0897").payment
    assert p.allowed == f"{allowed:.2f}" and p.coinsurance == f"{_pct(allowed, ira):.2f}"
    # J2405: status N, packaged, $0 with the reason; 96372: Q1 next to an S code, packaged
    assert _opps_si(f, "J2405") == "N" and _opps_si(f, "96372") == "Q1"
    for code in ("J2405", "96372"):
        p = _line(claim, code).payment
        assert (p.allowed, p.program_payment) == ("0.00", "0.00") and p.basis.startswith("Packaged")
    total = sum(Decimal(ln.payment.program_payment) for ln in claim.lines)
    assert claim.payment.program_payment == f"{total:.2f}"


def test_facility_claim_without_an_addendum_b_for_its_date() -> None:
    doc = dict(FACILITY, date_of_service="2026-03-04")
    p = _line(code_one(validate(doc)), "96413").payment
    assert p.allowed is None and "No loaded OPPS Addendum B covers" in p.basis
    drug = _line(code_one(validate(doc)), "J2405").payment  # status N in 2025, but no 2026 Addendum: no guess
    assert drug.allowed is None


def test_charges_from_the_charge_master_and_the_formulary(tmp_path: Path) -> None:
    site = _site(tmp_path, charges="96372,88.00\nJ0897,42.00\n")
    claim = code_one(validate(_office("2026-02-10"), site=site))
    assert _line(claim, "96372").charge == "88.00"
    assert _line(claim, "J0897").charge == f"{Decimal('42.00') * 120:.2f}"
    assert claim.total_charge == f"{Decimal('88.00') + Decimal('42.00') * 120:.2f}"
    assert claim.clean and not claim.at_stake.lines
    # a formulary row's charge_per_unit wins over the charge master for the drug it mapped
    doc = _office("2026-02-10", drugs=[{"code": {"system": "local", "code": "DMAB120"}, "dose": {"value": 120, "unit": "mg"}}])
    site = _site(tmp_path, charges="96372,88.00\nJ0897,42.00\n",
                 formulary="local,DMAB120,J0897,,denosumab 120 MG/1.7 ML,single_dose,120,mg,39.50\n")
    ln = _line(code_one(validate(doc, site=site)), "J0897")
    assert ln.charge == f"{Decimal('39.50') * 120:.2f}" and ln.units == 120


def test_a_code_missing_from_the_charge_master_is_an_error_never_zero(tmp_path: Path) -> None:
    site = _site(tmp_path, charges="J0897,42.00\n")
    claim = code_one(validate(_office("2026-02-10"), site=site))
    ln = _line(claim, "96372")
    assert ln.charge is None and claim.total_charge is None and not claim.clean
    f = next(f for f in claim.findings if f.code == "CHARGE_MISSING")
    assert f.severity == "error" and "96372" in f.message and f.why.rule == "payment.charge_missing"
    # the line is at stake: its charge is unknown, its expected payment needs the fee schedule
    assert claim.at_stake.lines == [ln.line] and claim.at_stake.findings == ["CHARGE_MISSING"]
    # without any charge master: no charge, and no error (nothing was configured to charge from)
    plain = code_one(validate(_office("2026-02-10")))
    assert all(x.charge is None for x in plain.lines) and not any(f.code == "CHARGE_MISSING" for f in plain.findings)


def test_money_at_stake_is_the_value_of_the_lines_with_errors(tmp_path: Path) -> None:
    # the NDC belongs to another product (pembrolizumab): an error on the drug's line only
    site = _site(tmp_path, charges="96372,88.00\nJ0897,42.00\n")
    doc = _office("2026-02-10")
    doc["administrations"][0]["drugs"][0]["ndc"] = "00006-3026-02"
    claim = code_one(validate(doc, site=site))
    drug = _line(claim, "J0897")
    assert any(f.code == "NDC_CODE_MISMATCH" and f.severity == "error" for f in claim.findings)
    stake = claim.at_stake
    assert stake.lines == [drug.line] and stake.findings == ["NDC_CODE_MISMATCH"]
    limit = _fact("asp_2026q1.lp", "asp_limit", "J0897")
    assert stake.allowed == f"{_usd(Decimal(limit) * 120):.2f}"  # the denied line's expected allowed amount
    assert stake.charge == f"{Decimal('42.00') * 120:.2f}"


@pytest.mark.parametrize("csv, message", [
    ("code,price\n96413,1\n", "the header must be code,charge"),
    ("code,charge\n96413,abc\n", "row 2.charge: 'abc' is not an amount"),
    ("code,charge\n96413,-1\n", "not negative"),
    ("code,charge\nXX,1\n", "row 2.code"),
    ("code,charge\n96413,1\n96413,2\n", "listed twice"),
])
def test_charge_master_errors_name_the_row(tmp_path: Path, csv: str, message: str) -> None:
    (tmp_path / "c.csv").write_text(csv)
    (tmp_path / "site.toml").write_text('charges = "c.csv"\n')
    with pytest.raises(InputError) as err:
        load_site(tmp_path / "site.toml")
    assert message in str(err.value)


def test_example_site_charges_every_example_line() -> None:
    site = load_site(ROOT / "examples" / "site" / "site.toml")
    from oncologic.load import load_file

    for path in sorted((ROOT / "examples").glob("*.yaml")):
        claim = code_one(load_file(str(path), site=site))
        assert claim.total_charge is not None and Decimal(claim.total_charge) > 0, path.name
        assert all(ln.charge and Decimal(ln.charge) > 0 for ln in claim.lines), path.name


def _jsonl(tmp_path: Path, docs: list[dict]) -> Path:
    import json

    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs) + "not json\n")
    return path


def test_batch_summary_and_the_report_of_batch_output(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from oncologic.batch import BatchOptions, run_batch
    from oncologic.cli import main

    bad = _office("2026-02-10")
    bad["id"] = "MONEY-BAD"
    bad["administrations"][0]["drugs"][0]["ndc"] = "00006-3026-02"  # an error on the drug's line
    docs = [_office("2026-02-10"), dict(FACILITY), bad]
    out = tmp_path / "out.jsonl"
    summary = run_batch(_jsonl(tmp_path, docs), out, BatchOptions(chunk_size=2), progress=False)
    records = [json.loads(x) for x in out.read_text().splitlines()]
    claims = [r["claim"] for r in records if "claim" in r]
    assert len(claims) == 3 and records[-1]["error"]["kind"] == "input"
    # the totals are the claims' own amounts added up
    expected = sum(Decimal(c["payment"]["program_payment"]) for c in claims)
    stake = sum(Decimal(c["at_stake"]["allowed"]) for c in claims)
    assert summary.expected == expected and summary.at_stake == stake > 0
    text = summary.render()
    assert f"expected Medicare payment: ${expected:,.2f} in total over 3 of 3 claims" in text
    assert f"money at stake (expected allowed amount of the priced lines with errors, denied as the claims stand): ${stake:,.2f}" in text
    for c in claims:
        assert c["encounter"] in text and f"${Decimal(c['payment']['program_payment']):,.2f}" in text
    # oncologic report reads that output as it is: the claims' money, the record not coded
    html = tmp_path / "r.html"
    r = CliRunner().invoke(main, ["report", str(out), "-o", str(html)])
    assert r.exit_code == 0, r.output
    page = html.read_text()
    assert f"${expected:,.2f}" in page and f"${stake:.2f}" in page
    assert 'id="not-coded"' in page and "invalid JSON" in page
    for c in claims:
        assert f">{c['encounter']}</a>" in page
        for ln in c["lines"]:
            assert ln["payment"]["basis"].replace("'", "&#x27;")[:60] in page
    # a broken output line is named, never a traceback
    (tmp_path / "broken.jsonl").write_text(out.read_text().splitlines()[0] + "\n{\"record\": 2, \"claim\": {\"lines\": 3}}\n")
    r = CliRunner().invoke(main, ["report", str(tmp_path / "broken.jsonl"), "-o", str(html)])
    assert r.exit_code == 2 and "line 2" in r.output and "Traceback" not in r.output


def test_stv_packaged_codes_without_an_s_t_or_v_service_on_their_date() -> None:
    import yaml

    doc = yaml.safe_load((ROOT / "examples" / "sc_injection_day.yaml").read_text())
    doc.update(setting="facility", date_of_service="2025-11-05")
    claim = code_one(validate(doc))
    f = "opps_2025q4.lp"
    q1 = [ln for ln in claim.lines if ln.code.isdigit() and _opps_si(f, ln.code) == "Q1"]
    assert len(q1) >= 2 and not any(_opps_si(f, ln.code) in ("S", "T", "V") for ln in claim.lines)
    paid = [ln for ln in q1 if ln.payment.allowed != "0.00"]
    assert len(paid) == 1, [ln.payment.basis for ln in q1]  # only the highest-paying one
    best = max(_fact(f, "opps_rate", ln.code) for ln in q1)
    assert paid[0].payment.allowed == f"{_usd(Decimal(best)):.2f}"
    for ln in q1:
        if ln is not paid[0]:
            assert ln.payment.basis.startswith("Packaged") and "highest rate" in ln.payment.basis


def test_a_biosimilar_is_paid_at_the_limit_cms_publishes_for_it() -> None:
    # bevacizumab-awwb (Q5107, 10 mg): the file's limit is CMS's price (ASP + 8 % of the reference
    # product's ASP for a qualifying biosimilar); nothing is added or recomputed
    limit = _fact("asp_2026q1.lp", "asp_limit", "Q5107")
    drugs = [{"hcpcs": "Q5107", "dose": {"value": 400, "unit": "mg"}, "container": {"type": "single_dose"}}]
    doc = _office("2026-03-04", drugs=drugs)
    doc["diagnoses"] = ["C18.7"]
    doc["administrations"][0].update(route="iv_infusion", start="09:00", stop="09:30")
    ln = _line(code_one(validate(doc)), "Q5107")
    assert ln.units == 40 and ln.payment.allowed == f"{_usd(Decimal(limit) * 40):.2f}"
    assert ln.payment.allowed == ln.asp_limit.total


def test_a_hospital_clinic_visit_is_paid_under_its_apc() -> None:
    # a separately identifiable visit on a facility claim is G0463 (status J2): with no J1 service,
    # its APC rate (regression: a line resting on a service once left the program without an answer)
    doc = dict(FACILITY, services=[{"code": "99214", "separately_identifiable": True}])
    claim = code_one(validate(doc))
    visit = _line(claim, "G0463")
    f = "opps_2025q4.lp"
    assert _opps_si(f, "G0463") == "J2"
    rate = _usd(Decimal(_fact(f, "opps_rate", "G0463")))
    assert visit.payment.allowed == f"{rate:.2f}" and "status J2" in visit.payment.basis
