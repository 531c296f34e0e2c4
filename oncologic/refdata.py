"""Where the encodings and the generated reference facts live, and the little Python needs of them.

The reference tables are versioned fact files: the shipped ones in ``facts/*.lp`` (regenerated from
the agency releases by ``scripts/build_facts.py`` with the importer of ``oncologic.refimport``) and a
user's own imports in the data folder (``oncologic data import``; ``ONCOLOGIC_DATA_DIR``, default a
per-user folder), layered over them: a user file of the same name replaces the shipped one. Python
reads only what input validation needs: the set of known HCPCS codes (the manifests), and the
NDC-to-HCPCS crosswalk (to fill in a missing HCPCS code from an NDC).
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _find_root() -> Path:
    """The folder holding ``encodings/`` and ``facts/``: the source checkout, or the installed share."""
    env = os.environ.get("ONCOLOGIC_HOME")
    if env:
        return Path(env)
    for cand in (_PKG.parent, _PKG / "_data"):
        if (cand / "encodings").is_dir() and (cand / "facts").is_dir():
            return cand
    raise RuntimeError("cannot find encodings/ and facts/ (set ONCOLOGIC_HOME)")


ROOT = _find_root()
ENCODINGS = ROOT / "encodings"
FACTS = ROOT / "facts"
POLICIES = ENCODINGS / "policies"


def rule_files() -> list[Path]:
    """Every standard rule file, in a fixed order (interface first; profiles excluded), then the
    hand-written payer fact files of ``facts/payers/`` (small; always loaded whole)."""
    files = [ENCODINGS / "interface.lp"]
    files += sorted(p for p in ENCODINGS.rglob("*.lp") if p.parent != POLICIES and p.name != "interface.lp")
    files += sorted((FACTS / "payers").glob("*.lp"))
    return files


def data_dir() -> Path:
    """The user's data folder (imports layered over the shipped facts)."""
    from .refimport.store import default_data_dir

    return default_data_dir()


def fact_files() -> list[Path]:
    """The shipped fact files, with a user's file of the same name in its place, plus the user's own."""
    files = {p.name: p for p in FACTS.glob("*.lp")}
    user = data_dir()
    if user.is_dir() and user.resolve() != FACTS.resolve():
        files.update({p.name: p for p in user.glob("*.lp")})
    return [files[name] for name in sorted(files)]


def is_policy_package(name: str | Path) -> bool:
    """A --policy value that names a directory (a policy package) rather than a built-in profile."""
    text = str(name)
    return not re.fullmatch(r"[a-z0-9_]+", text) or (Path(text).is_dir() and not (POLICIES / f"{text}.lp").is_file())


def policy_files(name: str | Path) -> list[Path]:
    """The rule files of a --policy value: a built-in profile (encodings/policies/NAME.lp), or a
    policy package: a directory whose ``*.lp`` files (any depth, sorted by path, except under a
    ``cases`` folder) are its rules, payer lists and switches (docs/rule-authors.md)."""
    if not is_policy_package(name):
        return [policy_file(str(name))]
    root = Path(name)
    if not root.is_dir():
        raise ValueError(f"policy {str(name)!r}: neither a built-in profile (lower-case letters, digits and _) "
                         "nor a directory (a policy package)")
    files = sorted(p.resolve() for p in root.rglob("*.lp")
                   if p.is_file() and "cases" not in p.relative_to(root).parts[:-1])
    if not files:
        raise ValueError(f"policy package {str(name)!r}: no .lp rule file in it")
    return files


def policy_file(name: str) -> Path:
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"policy name {name!r}: lower-case letters, digits and _ only (or a directory: a policy package)")
    path = POLICIES / f"{name}.lp"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in POLICIES.glob("*.lp")))
        raise ValueError(f"unknown policy profile {name!r} (known: {known})")
    return path


def reset() -> None:
    """Forget what was read (after an import in the same process)."""
    for fn in (manifest, known_hcpcs, _ndc_versions, _rxnorm, fact_index, _rules_selection):
        fn.cache_clear()


@lru_cache(maxsize=1)
def manifest() -> dict:
    """The shipped manifest with the user's tables and known codes merged in."""
    out = json.loads((FACTS / "manifest.json").read_text())
    user = data_dir() / "manifest.json"
    if user.is_file() and user.resolve() != (FACTS / "manifest.json").resolve():
        extra = json.loads(user.read_text())
        out["tables"] = {**out.get("tables", {}), **extra.get("tables", {})}
        out["known_hcpcs"] = sorted(set(out.get("known_hcpcs", ())) | set(extra.get("known_hcpcs", ())))
    return out


@lru_cache(maxsize=1)
def known_hcpcs() -> frozenset[str]:
    return frozenset(manifest()["known_hcpcs"])


_NDC_FACT = re.compile(r'^ndc(?:_unparsed)?\("([^"]*)","([0-9]{11})","([^"]+)"', re.M)
_TABLE_FACT = re.compile(r'^table\("([^"]*)",ndc,([0-9]+),([0-9]+)\)\.', re.M)


@lru_cache(maxsize=1)
def _ndc_versions() -> tuple[dict[str, dict[str, set[str]]], dict[str, tuple[int, int]]]:
    """(NDC -> crosswalk version -> HCPCS codes, version -> (from, to))."""
    out: dict[str, dict[str, set[str]]] = {}
    spans: dict[str, tuple[int, int]] = {}
    for path in fact_files():
        if not path.name.startswith("ndc_"):
            continue
        text = path.read_text()
        for v, start, end in _TABLE_FACT.findall(text):
            spans[v] = (int(start), int(end))
        for v, ndc, code in _NDC_FACT.findall(text):
            out.setdefault(ndc, {}).setdefault(v, set()).add(code)
    return out, spans


def ndc_codes_on(ndc: str, day: int | None = None) -> tuple[str, ...]:
    """The HCPCS codes the crosswalk files NDC under: in the crosswalk in force on ``day``
    (YYYYMMDD) when it lists the NDC, else in the newest crosswalk that lists it."""
    by_version, spans = _ndc_versions()
    versions = by_version.get(ndc)
    if not versions:
        return ()
    if day is not None:
        for v, codes in versions.items():
            start, end = spans.get(v, (0, 0))
            if start <= day <= end:
                return tuple(sorted(codes))
    newest = max(versions, key=lambda v: spans.get(v, (0, 0)))
    return tuple(sorted(versions[newest]))


_RX_NDC = re.compile(r'^rxnorm_ndc\("(\d+)","(\d{11})"\)\.', re.M)
_RX_REL = re.compile(r'^rxnorm_rel\("(\d+)","(\w+)","(\d+)"\)\.', re.M)


@lru_cache(maxsize=1)
def _rxnorm() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(RXCUI -> NDCs, RXCUI -> the concepts it leads to: its drugs (SCD/SBD) or their packs)."""
    ndcs: dict[str, set[str]] = {}
    down: dict[str, set[str]] = {}
    for path in fact_files():
        if path.name.startswith("rxnorm_"):
            text = path.read_text()
            for cui, ndc in _RX_NDC.findall(text):
                ndcs.setdefault(cui, set()).add(ndc)
            for cui1, rela, cui2 in _RX_REL.findall(text):
                # RXNREL reads "RXCUI2 RELA RXCUI1": an ingredient/brand RXCUI2 "ingredient_of" /
                # "tradename_of" / "constitutes" the drug RXCUI1
                if rela in ("ingredient_of", "tradename_of", "constitutes"):
                    down.setdefault(cui2, set()).add(cui1)
    return ndcs, down


def rxnorm_ndcs(rxcui: str) -> tuple[str, ...]:
    """The NDCs of an RxNorm concept: its own (RXNSAT ATN=NDC), else those of the drugs it leads
    to (an ingredient or brand: one or two RXNREL steps)."""
    ndcs, down = _rxnorm()
    seen, frontier, out = {rxcui}, [rxcui], set(ndcs.get(rxcui, ()))
    for _step in range(2):
        if out:
            break
        frontier = [c for f in frontier for c in down.get(f, ()) if c not in seen]
        seen.update(frontier)
        out = {n for c in frontier for n in ndcs.get(c, ())}
    return tuple(sorted(out))


def rxnorm_hcpcs(rxcui: str, day: int | None = None) -> tuple[str, ...]:
    """RxNorm -> NDC -> HCPCS: the HCPCS codes the crosswalk (in force on ``day``) files the
    concept's NDCs under."""
    return tuple(sorted({c for n in rxnorm_ndcs(rxcui) for c in ndc_codes_on(n, day)}))


def ndc_codes() -> dict[str, tuple[str, ...]]:
    """NDC (11 digits) -> the HCPCS codes of the newest crosswalk that lists it."""
    return {ndc: ndc_codes_on(ndc) for ndc in _ndc_versions()[0]}


# --------------------------------------------------------------------------------------------
# selecting the reference facts a batch needs

_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_CODE_LIKE = re.compile(r"^[A-Z0-9][A-Z0-9.]{2,10}$")
# table version terms ("2025Q4", "2026") are arguments of every row: never an index key
_VERSION = re.compile(r"^[0-9]{4}(?:Q[1-4])?$")


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "oncologic"


@lru_cache(maxsize=1)
def fact_index():
    """Every fact line of facts/*.lp, indexed by the code-like strings in it.

    Returns (lines, key -> line numbers, lines with no code-like string: always loaded); ``lines``
    is indexable (``lines[i]``) and ``index.get(key, ())`` gives the line numbers of ``key``.
    The index is cached on disk, keyed by each file's name, size and modification time (a stat,
    not a read of 2 MB), in a packed form: the lines as one UTF-8 blob plus offsets, the line
    numbers as packed 32-bit arrays. Loading it takes ~1 ms instead of ~10 ms for 45,000 Python
    strings and tuples (the one-shot CLI start-up path, docs/performance.md); lines are decoded
    only when a batch selects them.
    """
    import hashlib
    import marshal

    digest = hashlib.sha256(b"packed-3")
    for path in fact_files():
        st = path.stat()
        digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    cache = _cache_dir() / f"facts-{digest.hexdigest()[:24]}.marshal"
    try:
        with open(cache, "rb") as fh:
            blob, offsets, ncodes, vids, packed, always = marshal.loads(fh.read())
        return _Lines(blob, offsets, ncodes, vids), _Index(packed), always
    except (OSError, EOFError, ValueError, TypeError):
        pass
    lines, index, always = _build_fact_index()
    blob, offsets, ncodes, vids, packed = _pack(lines, index)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            marshal.dump((blob, offsets, ncodes, vids, packed, always), fh)
        os.replace(tmp, cache)
    except OSError:
        pass
    return _Lines(blob, offsets, ncodes, vids), _Index(packed), always


def _pack(lines: tuple[str, ...], index: dict[str, tuple[int, ...]]) -> tuple[bytes, bytes, bytes, tuple, dict[str, bytes]]:
    from array import array

    parts = [line.encode("utf-8") for line in lines]
    offsets = array("I", [0])
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    ncodes = array("H", bytes(2 * len(lines)))
    for rows in index.values():
        for i in rows:
            ncodes[i] += 1
    names: dict[str | None, int] = {None: 0}
    vid = array("H", [names.setdefault(_version_of(line), len(names)) for line in lines])
    order = tuple(sorted(names, key=names.__getitem__))
    return (b"".join(parts), offsets.tobytes(), ncodes.tobytes(), (order, vid.tobytes()),
            {k: array("I", v).tobytes() for k, v in index.items()})


_ROW_VERSION = re.compile(r'[a-z_0-9]+\("([0-9]{4}(?:Q[1-4])?)",')


def _version_of(line: str) -> str | None:
    m = _ROW_VERSION.match(line)
    return m.group(1) if m else None


class _Lines:
    """The fact lines, decoded from the packed blob on access; ``ncodes[i]``: how many distinct
    code-like strings line i names (its index keys)."""

    def __init__(self, blob: bytes, offsets: bytes, ncodes: bytes, vids: tuple) -> None:
        from array import array

        self.blob = blob
        self.offsets = array("I")
        self.offsets.frombytes(offsets)
        self.ncodes = array("H")
        self.ncodes.frombytes(ncodes)
        self.version_names, raw = vids  # row i has version version_names[vid[i]] (None: unversioned)
        self.vid = array("H")
        self.vid.frombytes(raw)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        return self.blob[self.offsets[i] : self.offsets[i + 1]].decode("utf-8")

    def version_ids(self, versions) -> set[int]:
        """The ids of these version terms (None included: unversioned rows)."""
        return {j for j, name in enumerate(self.version_names) if name in versions}

    def is_pair_row(self, i: int) -> bool:
        return self.blob.startswith(_PAIR_PREFIXES, self.offsets[i])


class _Index:
    """key -> line numbers, unpacked on access."""

    def __init__(self, packed: dict[str, bytes]) -> None:
        self.packed = packed

    def get(self, key: str, default=()):
        from array import array

        raw = self.packed.get(key)
        if raw is None:
            return default
        out = array("I")
        out.frombytes(raw)
        return out

    def __contains__(self, key: str) -> bool:
        return key in self.packed

    def __len__(self) -> int:
        return len(self.packed)


def _build_fact_index() -> tuple[tuple[str, ...], dict[str, tuple[int, ...]], tuple[str, ...]]:
    lines: list[str] = []
    index: dict[str, list[int]] = {}
    always: list[str] = []
    for path in fact_files():
        for raw in path.read_text(encoding="utf-8").splitlines():
            if not raw or raw.startswith("%"):
                continue
            keys = [q for q in _QUOTED.findall(raw) if _CODE_LIKE.match(q) and not _VERSION.match(q)]
            if not keys or raw.startswith(("table", "coverage_article")):
                always.append(raw)
                continue
            n = len(lines)
            lines.append(raw)
            for key in set(keys):
                index.setdefault(key, []).append(n)
    return tuple(lines), {k: tuple(v) for k, v in index.items()}, tuple(always)


@lru_cache(maxsize=8)
def encoding_codes(files: tuple[str, ...]) -> frozenset[str]:
    """Code-like string literals the rule files may emit or test (e.g. "96413", "J9060")."""
    out: set[str] = set()
    for name in files:
        for q in _QUOTED.findall(Path(name).read_text(encoding="utf-8")):
            if _CODE_LIKE.match(q):
                out.add(q)
    return frozenset(out)


def _line_codes(line: str) -> list[str]:
    return [q for q in _QUOTED.findall(line) if _CODE_LIKE.match(q) and not _VERSION.match(q)]


# Rows of a pair table (NCCI PTP: column-1 code, column-2 code) matter only when both codes can
# be on a claim of the batch. They are kept out of the one-hop expansion below: the other code of
# a pair is not a code of the batch, and following it pulled in every code paired with any
# administration code (~900 of the ~2,700 rows of a one-encounter selection, docs/performance.md).
_PAIR_TABLES = ("ncci(", "ncci_rationale(")
_PAIR_PREFIXES = tuple(t.encode() for t in _PAIR_TABLES)


def select_facts(batch: set[str], rules: frozenset[str] = frozenset(), days: frozenset[int] | None = None) -> str:
    """The reference fact lines a batch can use, plus the always-loaded ones:

    * the rows that name only codes the rules name (``rules``: their labels, MUE rows and the NCCI
      pairs among them), selected once per process (_rules_selection);
    * the rows that name a code of the ``batch``, and, one hop further, the rows of the codes
      those name (the NDCs and package sizes of a HCPCS code, the HCPCS code of an NDC);
    * a row of a pair table (NCCI) only when all its codes are among the codes above.

    The rules join every reference row through an encounter's own codes, so rows that name a
    code neither the batch nor the rules have (the NDCs of J7030 in a batch without saline, the
    codes paired with 96413 that no claim of the batch can carry) can never be used; leaving
    them out keeps a one-encounter program at ~1,800 instead of ~2,700 reference rows
    (docs/performance.md)."""
    lines, index, always = fact_index()
    keep = lines.version_ids(versions_for(days, always)) if days else None
    vid = lines.vid

    def usable(i: int) -> bool:  # a row of a version no date of the batch can pick is never used
        return keep is None or vid[i] in keep

    chosen, pairs = _rules_selection(rules)
    chosen = {i for i in chosen if usable(i)}
    own: set[int] = set()
    new_pairs: set[int] = set()
    for key in batch:
        for i in index.get(key, ()):
            if usable(i):
                (new_pairs if lines.is_pair_row(i) else own).add(i)
    more: set[str] = set()
    for i in own:
        for q in _line_codes(lines[i]):
            # rule codes too: an NDC filed under J9060 needs J9060's other NDCs; but not a billing
            # article's id: the rules join an article's diagnoses with the encounter's own codes,
            # so its other diagnoses (hundreds) are never used
            if q not in batch and not _ARTICLE.match(q):
                more.add(q)
    for key in more:
        for i in index.get(key, ()):
            if usable(i):
                (new_pairs if lines.is_pair_row(i) else own).add(i)
    chosen |= own
    if new_pairs:
        known = rules | batch | more
        chosen.update(i for i in new_pairs if all(q in known for q in _line_codes(lines[i])))
    chosen.update(i for i in pairs if usable(i))
    return "\n".join([*always, *(lines[i] for i in sorted(chosen))]) + "\n"


_ARTICLE = re.compile(r"^A[0-9]{5}$")
_TABLE_ROW = re.compile(r'^table\("([^"]*)",([a-z_0-9()]+),([0-9]+),([0-9]+)\)\.$')


@lru_cache(maxsize=64)
def versions_for(days: frozenset[int], always: tuple[str, ...]) -> frozenset:
    """The table versions the rules can pick for these dates of service (rx_ver in
    encodings/drugs/units.lp: the covering version with the latest start, else the newest that
    started before, else the oldest), plus None: rows of other versions can never be used, so a
    batch does not load ten quarters of prices and crosswalks to use one."""
    tables: dict[str, list[tuple[int, int, str]]] = {}
    for row in always:
        m = _TABLE_ROW.match(row)
        if m:
            tables.setdefault(m.group(2), []).append((int(m.group(3)), int(m.group(4)), m.group(1)))
    keep: set = {None}
    for spans in tables.values():
        for day in days:
            cover = [s for s in spans if s[0] <= day <= s[1]]
            before = [s for s in spans if s[0] <= day]
            pick = max(cover) if cover else max(before) if before else min(spans)
            keep.add(pick[2])
    return frozenset(keep)


@lru_cache(maxsize=8)
def _rules_selection(rules: frozenset[str]) -> tuple[frozenset[int], frozenset[int]]:
    """(the non-pair rows, the pair rows) that name only codes of ``rules``: a row qualifies when
    as many of its index keys are rule codes as it names codes (no line is decoded)."""
    lines, index, _always = fact_index()
    hits: dict[int, int] = {}
    for key in rules:
        for i in index.get(key, ()):
            hits[i] = hits.get(i, 0) + 1
    ncodes = lines.ncodes
    chosen: set[int] = set()
    pairs: set[int] = set()
    for i, n in hits.items():
        if n == ncodes[i]:
            (pairs if lines.is_pair_row(i) else chosen).add(i)
    return frozenset(chosen), frozenset(pairs)
