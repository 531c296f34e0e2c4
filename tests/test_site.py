"""The site configuration (oncologic/formats/site.py): strict TOML, key paths in errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from oncologic.cli import main
from oncologic.formats.site import load_site
from oncologic.load import InputError

ROOT = Path(__file__).resolve().parents[1]
HEADER = "system,code,hcpcs,ndc,name,container_type,container_size,container_unit,charge_per_unit\n"


def _write(tmp_path: Path, toml: str, csv: str | None = None) -> Path:
    if csv is not None:
        (tmp_path / "formulary.csv").write_text(csv, encoding="utf-8")
    path = tmp_path / "site.toml"
    path.write_text(toml, encoding="utf-8")
    return path


def test_minimal_site_reads_every_section(tmp_path: Path) -> None:
    path = _write(tmp_path, '''
time_zone = "America/New_York"
formulary = "formulary.csv"
[payers]
"Medicare Part B" = "medicare"
"Acme Gold" = { type = "medicare_advantage", plan = "Acme Gold PPO" }
[locations]
"ONC-INF-3" = "facility"
''', HEADER + "rxnorm,1657731,J9271,,pembrolizumab 100 MG in 4 ML Injection,single_dose,100,mg,\n")
    site = load_site(path)
    assert site.zone().key == "America/New_York"
    assert site.payer("medicare part b").type == "medicare"
    assert site.payer("Acme Gold").plan == "Acme Gold PPO"
    assert site.location("onc-inf-3") == "facility"
    row = site.formulary_row("http://www.nlm.nih.gov/research/umls/rxnorm", "1657731")
    assert row is not None and row.hcpcs == "J9271" and row.container_type == "single_dose"
    assert site.formulary_row("rxnorm", "1657731") is row
    assert site.formulary_row("rxnorm", "999") is None


@pytest.mark.parametrize("toml, path, words", [
    ('time_zon = "UTC"\n', "time_zon", "unknown key"),
    ('[payers]\n"Acme" = { type = "medicare", plna = "x" }\n', 'payers.Acme.plna', "unknown key"),
    ('[payers]\n"Acme" = "medicaree"\n', "payers.Acme.type", "medicare_advantage"),
    ('[locations]\n"X" = "hospital"\n', 'locations.X', ""),
    ('time_zone = "Mars/Olympus"\n', "time_zone", "IANA"),
    ('time_zone = 5\n', "time_zone", ""),
])
def test_bad_site_names_the_key_path(tmp_path: Path, toml: str, path: str, words: str) -> None:
    with pytest.raises(InputError) as info:
        load_site(_write(tmp_path, toml))
    text = info.value.render()
    assert path in text and words in text


def test_bad_formulary_rows_name_row_and_column(tmp_path: Path) -> None:
    csv = HEADER + "rxnorm,1,J9271,,x,single_dose,abc,mg,\nrxnorm,2,,,x,,,,\nrxnorm,3,J9271,,x,triple_dose,,,\n"
    with pytest.raises(InputError) as info:
        load_site(_write(tmp_path, 'formulary = "formulary.csv"\n', csv))
    text = info.value.render()
    assert "row 2" in text and "row 3" in text and "hcpcs or ndc" in text and "row 4" in text and "container_type" in text


def test_formulary_header_is_checked(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="header"):
        load_site(_write(tmp_path, 'formulary = "formulary.csv"\n', "code,hcpcs\n1,J9271\n"))


def test_cli_site_option_bad_file_exits_2_without_traceback(tmp_path: Path) -> None:
    site = _write(tmp_path, "colour = 1\n")
    for cmd in (["solve"], ["explain"], ["report", "-o", str(tmp_path / "r.html")]):
        result = CliRunner().invoke(main, [*cmd, str(ROOT / "examples" / "seed_session.yaml"), "--site", str(site)])
        assert result.exit_code == 2, result.output
        assert "colour: unknown key" in result.output
    result = CliRunner().invoke(main, ["batch", str(ROOT / "examples" / "seed_session.yaml"), "--site", str(site)])
    assert result.exit_code == 2 and "colour: unknown key" in result.output


def test_cli_site_option_good_file_codes(tmp_path: Path) -> None:
    site = _write(tmp_path, 'time_zone = "America/Chicago"\n')
    plain = CliRunner().invoke(main, ["solve", str(ROOT / "examples" / "seed_session.yaml"), "--json"])
    with_site = CliRunner().invoke(main, ["solve", str(ROOT / "examples" / "seed_session.yaml"), "--json", "--site", str(site)])
    assert plain.exit_code == 0 and with_site.exit_code == 0
    assert plain.output == with_site.output
