"""NLM RxNorm release files (RRF, pipe-separated, one record per line, a trailing '|'):
RXNCONSO.RRF (concepts and names), RXNSAT.RRF (attributes; ATN = 'NDC' gives a concept's NDCs) and
RXNREL.RRF (relations). Recognised by their field counts and values, not by name. Kept (SAB =
RXNORM rows only, the normalised ones NLM asserts; suppressed rows skipped):

  rxnorm_tty(RXCUI, TTY)        the term type of a concept (IN, SCD, SBD, ...), from RXNCONSO;
  rxnorm_ndc(RXCUI, NDC11)      an NDC of a concept, from RXNSAT with ATN = 'NDC';
  rxnorm_rel(RXCUI1, RELA, RXCUI2)  RXCUI2 RELA RXCUI1 as RxNorm states it (RXNREL: the relation
                                reads from the second concept to the first), for the relations
                                that lead from an ingredient or brand to its drugs.

No name strings are kept (the rules need the codes only). No RxNorm release is shipped."""

from __future__ import annotations

import re

from .core import Rejected, Table

CONSO, SAT, REL = 18, 13, 16  # fields before the trailing '|'
RELAS = {"has_ingredient", "ingredient_of", "has_tradename", "tradename_of", "consists_of", "constitutes",
         "has_dose_form", "isa", "inverse_isa"}
_CUI = re.compile(r"\d{1,8}")


def rrf_kind(text: str) -> int | None:
    """The field count of an RRF file (18, 13 or 16), or None when it is not one."""
    lines = [ln for ln in text.splitlines()[:20] if ln]
    if not lines or not all(ln.endswith("|") for ln in lines):
        return None
    n = lines[0].count("|")  # the first record decides; read_rrf checks every other line
    first = lines[0].split("|", 1)[0]
    return n if n in (CONSO, SAT, REL) and (_CUI.fullmatch(first) or (n == REL and first == "")) else None


def read_rrf(text: str, name: str) -> Table:
    n = rrf_kind(text)
    part = {CONSO: "conso", SAT: "sat", REL: "rel"}[n]
    t = Table("rxnorm", f"RxNorm {part.upper()} (RXN{part.upper()}.RRF): {'concept term types' if n == CONSO else 'NDCs of concepts' if n == SAT else 'relations'}",
              "", 0, 0, part)
    t.declare({CONSO: "rxnorm_tty/2", SAT: "rxnorm_ndc/2", REL: "rxnorm_rel/3"}[n])
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        f = line.split("|")
        if len(f) != n + 1:
            raise Rejected(name, line_no, f"{len(f) - 1} fields, the file's first lines have {n}")
        t.rows_read += 1
        if n == CONSO:
            _conso(t, f, name, line_no)
        elif n == SAT:
            _sat(t, f, name, line_no)
        else:
            _rel(t, f, name, line_no)
    return t


def _cui(value: str, name: str, line: int) -> str:
    if not _CUI.fullmatch(value):
        raise Rejected(name, line, f"RXCUI {value!r} is not a number")
    return value


def _conso(t: Table, f: list[str], name: str, line: int) -> None:
    # RXCUI|LAT|TS|LUI|STT|SUI|ISPREF|RXAUI|SAUI|SCUI|SDUI|SAB|TTY|CODE|STR|SRL|SUPPRESS|CVF|
    if f[11] != "RXNORM" or f[16] in ("Y", "E", "O"):
        t.skip("row: not an RxNorm-asserted, unsuppressed name")
        return
    t.fact("rxnorm_tty", _cui(f[0], name, line), f[12])


def _sat(t: Table, f: list[str], name: str, line: int) -> None:
    # RXCUI|LUI|SUI|RXAUI|STYPE|CODE|ATUI|SATUI|ATN|SAB|ATV|SUPPRESS|CVF|
    if f[8] != "NDC" or f[9] != "RXNORM" or f[11] in ("Y", "E", "O"):
        t.skip("row: not an RxNorm-asserted, unsuppressed NDC attribute")
        return
    ndc = f[10]
    if not re.fullmatch(r"\d{11}", ndc):
        raise Rejected(name, line, f"NDC {ndc!r} of RxNorm is not 11 digits")
    t.fact("rxnorm_ndc", _cui(f[0], name, line), ndc)


def _rel(t: Table, f: list[str], name: str, line: int) -> None:
    # RXCUI1|RXAUI1|STYPE1|REL|RXCUI2|RXAUI2|STYPE2|RELA|RUI|SRUI|SAB|SL|RG|DIR|SUPPRESS|CVF|
    if f[10] != "RXNORM" or f[7] not in RELAS or not f[0] or not f[4] or f[14] in ("Y", "E", "O"):
        t.skip("row: not a concept-level RxNorm relation the rules use")
        return
    t.fact("rxnorm_rel", _cui(f[0], name, line), f[7], _cui(f[4], name, line))
