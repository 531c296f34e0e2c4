"""The clingo adapter: the only module of oncologic that imports clingo.

* Parses the encodings once per process, with an AST pass that adds a provenance rule
  ``_why(N, Head, V1, ..., Vk) :- Body.`` next to every rule tagged ``%@rule`` (N numbers the
  tagged rule, V1..Vk are its global variables in name order; one ``#show _why/K.`` per arity:
  a flat atom grounds cheaper than one holding a tuple). One solve yields the claim and
  the reasons together; Python renders the text (see :mod:`oncologic.explain`).
* Solves batch-first: many encounters in one ground program, keyed by small integers.
* Runs strict: clingo's "operation undefined" and "atom undefined" messages become errors, so
  an arithmetic slip in a rule cannot silently drop a claim line.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import clingo
from clingo import ast

from . import refdata
from .facts import Const, Fact, Fn
from .rules import RuleTag, TagError, check_effective, parse_tags

WHY = "_why"
_COMMENT = getattr(ast.ASTType, "Comment", None)


class EncodingError(Exception):
    """A rule file does not parse, or breaks the interface (file, line and message)."""


class StrictModeError(Exception):
    """clingo reported an undefined operation or atom while grounding (strict mode)."""


class SecondModelError(EncodingError):
    """The program has more than one answer set for a batch (a choice the checks did not catch)."""


class UnsatisfiableError(EncodingError):
    """The program has no answer set: integrity constraints fired (named, with file:line)."""


ONE_ANSWER_MODELS = 2  # benchmarks/one_answer.py measures 1 against 2


@dataclass(frozen=True)
class TaggedRule:
    tag: RuleTag
    variables: tuple[str, ...]
    body: tuple[str, ...]  # positive body literals as text (for `explain` trees)


@dataclass
class Program:
    statements: list[Any]
    rules: list[TaggedRule]
    files: tuple[str, ...]
    codes: Optional[frozenset[str]] = None  # code-like strings of the rule files (program_codes)


def program_codes(prog: Program) -> frozenset[str]:
    """The code-like string literals of the program's rule files (refdata.encoding_codes),
    computed once and kept with the on-disk program cache."""
    if prog.codes is None:
        prog.codes = refdata.encoding_codes(prog.files)
    return prog.codes


# ------------------------------------------------------------------------------------------
# instrumentation


class _VarCollector(ast.Transformer):
    def __init__(self) -> None:
        self.names: list[str] = []

    def visit_Variable(self, node):  # noqa: N802 - clingo naming
        if node.name != "_" and node.name not in self.names:
            self.names.append(node.name)
        return node


def _vars(node) -> list[str]:
    col = _VarCollector()
    col(node)
    return col.names


def _global_vars(stm) -> list[str]:
    names: list[str] = list(_vars(stm.head))
    for lit in stm.body:
        if lit.ast_type == ast.ASTType.Literal:
            atom = lit.atom
            if atom.ast_type == ast.ASTType.BodyAggregate or atom.ast_type == ast.ASTType.Aggregate:
                for guard in (atom.left_guard, atom.right_guard):
                    if guard is not None:
                        names += _vars(guard.term)
            else:
                names += _vars(atom)
    return sorted(set(names))


def _positive_body(stm) -> tuple[str, ...]:
    out = []
    for lit in stm.body:
        if lit.ast_type == ast.ASTType.Literal and lit.sign == ast.Sign.NoSign and lit.atom.ast_type == ast.ASTType.SymbolicAtom:
            out.append(str(lit.atom))
    return tuple(out)


def _parse_file(path: Path, display: str, rules: list[TaggedRule], statements: list[Any]) -> None:
    try:
        tags = {t.line: t for t in parse_tags(path, display)}
    except TagError as exc:
        raise EncodingError(str(exc)) from None
    used: set[int] = set()
    messages: list[str] = []

    def on_stm(stm) -> None:
        if stm.ast_type == _COMMENT:
            # clingo >= 5.8 hands comments over as statements: half of the rule text, and never
            # needed to ground (the docs and tags are read from the files themselves)
            return
        tag = tags.get(stm.location.begin.line) if stm.ast_type == ast.ASTType.Rule else None
        if tag is not None and (tag.effective_from is not None or tag.effective_to is not None):
            stm = _effective_rule(stm, tag, display)
        statements.append(stm)
        if tag is None:
            return
        line = stm.location.begin.line
        head = stm.head
        if _is_constraint(stm):
            # a tagged integrity constraint: never in a model; its id and sentence name it when
            # it fires (unsat_report). Listed by `oncologic rules` like any tagged rule.
            used.add(line)
            rules.append(TaggedRule(tag, tuple(_global_vars(stm)), _positive_body(stm)))
            return
        if head.ast_type != ast.ASTType.Literal or head.atom.ast_type != ast.ASTType.SymbolicAtom:
            raise EncodingError(f"{display}:{line}: %@rule {tag.id} must tag a rule with one plain head atom")
        used.add(line)
        names = [n for n in _global_vars(stm) if n != _EFF_VAR]
        for var_names, _fmt in tag.placeholders():
            for var in var_names:
                if var not in names:
                    raise EncodingError(f"{display}:{line}: %@text of {tag.id} uses {{{var}}}, not a variable of the rule")
        number = len(rules)
        rules.append(TaggedRule(tag, tuple(names), _positive_body(stm)))
        loc = stm.location
        args = [ast.Variable(loc, n) for n in names]
        why = ast.SymbolicAtom(
            ast.Function(
                loc,
                WHY,
                [ast.SymbolicTerm(loc, clingo.Number(number)), head.atom.symbol, *args],
                0,
            )
        )
        statements.append(ast.Rule(loc, ast.Literal(loc, ast.Sign.NoSign, why), stm.body))

    def logger(code, msg):
        messages.append(msg)

    try:
        ast.parse_files([str(path)], on_stm, logger=logger)
    except RuntimeError:
        detail = "; ".join(m.strip().replace(str(path), display) for m in messages) or "syntax error"
        raise EncodingError(f"{display}: {detail}") from None
    unused = set(tags) - used
    if unused:
        line = min(unused)
        raise EncodingError(f"{display}:{line}: %@rule {tags[line].id} does not tag a rule")


def _is_constraint(stm) -> bool:
    """An integrity constraint ``:- Body.`` (its head is the constant false)."""
    head = stm.head
    return (head.ast_type == ast.ASTType.Literal and head.atom.ast_type == ast.ASTType.BooleanConstant
            and not head.atom.value)


_EFF_VAR = "OncEffectiveDos"


def _effective_rule(stm, tag: RuleTag, display: str):
    """The rule with ``dos(E,D), D >= From, D <= To`` added to its body (``%@effective``): E is the
    first argument of the head, the encounter by the interface's convention."""
    line = stm.location.begin.line
    head = stm.head
    args = getattr(getattr(getattr(head, "atom", None), "symbol", None), "arguments", None)
    if head.ast_type != ast.ASTType.Literal or not args or args[0].ast_type != ast.ASTType.Variable:
        raise EncodingError(f"{display}:{line}: %@effective on {tag.id} needs a rule whose head's first argument is "
                            "the encounter variable E")
    loc = stm.location
    enc = ast.Variable(loc, args[0].name)
    dos_var = ast.Variable(loc, _EFF_VAR)
    body = list(stm.body)
    body.append(ast.Literal(loc, ast.Sign.NoSign, ast.SymbolicAtom(ast.Function(loc, "dos", [enc, dos_var], 0))))
    for op, value in ((ast.ComparisonOperator.GreaterEqual, tag.effective_from),
                      (ast.ComparisonOperator.LessEqual, tag.effective_to)):
        if value is not None:
            cmp = ast.Comparison(dos_var, [ast.Guard(op, ast.SymbolicTerm(loc, clingo.Number(value)))])
            body.append(ast.Literal(loc, ast.Sign.NoSign, cmp))
    return stm.update(body=body)


def _show_provenance(statements: list[Any], rules: list[TaggedRule]) -> None:
    """One ``#show _why/K.`` for every arity of the provenance atoms (2 + a rule's variables)."""
    loc = next((stm.location for stm in statements if "location" in stm.keys()), None)
    if loc is None:
        return
    for arity in sorted({2 + len(r.variables) for r in rules}):
        statements.append(ast.ShowSignature(loc, WHY, arity, True))


_CACHE: dict[tuple[str, ...], Program] = {}
_BUILD_LOCK = threading.Lock()
_LOCK = threading.Lock()


def _fresh_locks_in_child() -> None:
    """A child forked while another thread held a lock (oncologic.limits forks to solve under
    limits) must not wait for a thread that does not exist in it."""
    global _BUILD_LOCK, _LOCK
    _BUILD_LOCK = threading.Lock()
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_locks_in_child)


def load_program(extra: Sequence[Path] = ()) -> Program:
    """The instrumented standard rules plus profile/user files, parsed once per process."""
    files = [*refdata.rule_files(), *extra]
    key = tuple(str(p) for p in files)
    with _LOCK:
        prog = _CACHE.get(key)
        if prog is None:
            prog = None if _NO_DISK_CACHE else _load_cached_program(files, key)
            if prog is not None:
                _CACHE[key] = prog
                return prog
            statements: list[Any] = []
            rules: list[TaggedRule] = []
            standard = len(files) - len(extra)
            known: Optional[dict[tuple[str, int], str]] = None
            # the predicates every profile, package and user file defines: files of one policy package
            # read each other's helpers whatever their order (a payer list in payers/ read by a rule file)
            added: set[tuple[str, int]] = set()
            for path in extra:
                added |= _file_defines(path)
            for i, path in enumerate(files):
                display = display_path(path)
                if i >= standard:  # profiles and user files: parse alone, then check the interface
                    if known is None:
                        known = standard_index(statements)
                    added |= check_rule_file(path, display, known, added)
                _parse_file(path, display, rules, statements)
            try:
                check_effective([r.tag for r in rules])
            except TagError as exc:
                raise EncodingError(str(exc)) from None
            _show_provenance(statements, rules)
            prog = Program(statements, rules, key)
            _CACHE[key] = prog
            _save_cached_program(files, prog)
    return prog


# The instrumented program of a set of rule files, cached on disk as text plus the pickled tag
# list, keyed by the SHA-256 of the files, this module's source and the clingo version. A fresh
# process re-reads the text with one ast.parse_string (~10 ms) instead of parsing and
# instrumenting every file through Python callbacks (~100 ms): the `oncologic solve` start-up
# path (docs/performance.md). Statements read back this way carry no file locations, so a
# strict-mode problem is re-derived from the sources before it is reported (see solve()).


def _program_digest(files: Sequence[Path]) -> Optional[str]:
    import hashlib

    digest = hashlib.sha256(clingo.__version__.encode())
    try:
        digest.update(Path(__file__).read_bytes())
        for path in files:
            digest.update(str(path).encode() + b"\0")
            digest.update(Path(path).read_bytes())
    except OSError:
        return None
    return digest.hexdigest()[:32]


def _program_cache_path(files: Sequence[Path]) -> Optional[Path]:
    # only the shipped rules and profiles: a user's own rule files change too often to be worth it
    if not all(Path(p).resolve().is_relative_to(refdata.ROOT.resolve()) for p in files):
        return None
    digest = _program_digest(files)
    return None if digest is None else refdata._cache_dir() / f"program-{digest}.pickle"


def _load_cached_program(files: Sequence[Path], key: tuple[str, ...]) -> Optional[Program]:
    import pickle

    path = _program_cache_path(files)
    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            text, rules, codes = pickle.load(fh)
    except Exception:  # noqa: BLE001 - a missing or stale cache is rebuilt from the sources
        return None
    prog = Program(_LazyStatements(text), rules, key, codes)
    prog.from_cache = True  # type: ignore[attr-defined]
    return prog


class _LazyStatements(list):
    """The statements of a cached program: parsed from its text on first use. solve() hands the
    text to clingo directly while nobody has asked for the AST (the one-shot CLI path)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.parsed = False
        self.solved = False
        self._lock = threading.Lock()

    def _parse(self) -> None:
        # thread-safe (the Dask runner may solve in threads): parse into a private list and
        # publish it whole, so no thread ever sees a half-parsed program
        if self.parsed:
            return
        with self._lock:
            if self.parsed:
                return
            out: list[Any] = []
            ast.parse_string(self.text, out.append)
            super().extend(out)
            self.parsed = True

    def __iter__(self):
        self._parse()
        return super().__iter__()

    def __len__(self) -> int:
        self._parse()
        return super().__len__()

    def __getitem__(self, i):
        self._parse()
        return super().__getitem__(i)


def _save_cached_program(files: Sequence[Path], prog: Program) -> None:
    import os
    import pickle

    path = _program_cache_path(files)
    if path is None:
        return
    try:
        text = "\n".join(str(stm) for stm in prog.statements)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            pickle.dump((text, prog.rules, program_codes(prog)), fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        # keep the newest few (rule authors change the encodings all day)
        old = sorted(path.parent.glob("program-*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in old[8:]:
            stale.unlink()
    except Exception:  # noqa: BLE001 - caching is an optimisation only
        pass


# ------------------------------------------------------------------------------------------
# interface check of profile and user rule files (issue #5)


def _atoms(node, out: list) -> None:
    """Every symbolic atom under an AST node (aggregate elements and conditions included)."""

    class _Collect(ast.Transformer):
        def visit_SymbolicAtom(self, atom):  # noqa: N802 - clingo naming
            out.append(atom)
            return atom

    _Collect()(node)


def _signature(atom) -> Optional[tuple[str, int]]:
    term = atom.symbol
    if term.ast_type == ast.ASTType.UnaryOperation:  # classical negation -p(X)
        term = term.argument
    if term.ast_type == ast.ASTType.Function:
        return (term.name, len(term.arguments))
    if term.ast_type == ast.ASTType.SymbolicTerm and term.symbol.type == clingo.SymbolType.Function:
        return (term.symbol.name, len(term.symbol.arguments))
    return None


def _where(atom, stm):
    term = atom.symbol
    return (term.location if "location" in term.keys() else stm.location).begin


def _defines(stm) -> list[tuple[str, int]]:
    """Predicates a statement makes available: rule heads, #defined, #external."""
    if stm.ast_type == ast.ASTType.Defined:
        return [(stm.name, stm.arity)]
    heads: list = []
    if stm.ast_type == ast.ASTType.Rule:
        _atoms(stm.head, heads)
    elif stm.ast_type == ast.ASTType.External:
        heads.append(stm.atom)
    return [s for s in (_signature(a) for a in heads) if s is not None]


def display_path(path: Path | str) -> str:
    """A rule file's name as messages show it: relative to the repository when inside it."""
    try:
        return str(Path(path).relative_to(refdata.ROOT))
    except ValueError:
        return str(path)


def standard_signatures(statements: Sequence[Any]) -> set[tuple[str, int]]:
    """name/arity of every predicate the standard rules declare (#defined) or derive."""
    return set(standard_index(statements))


def standard_index(statements: Sequence[Any]) -> dict[tuple[str, int], str]:
    """name/arity -> file:line of the first statement of the standard rules that declares
    (#defined) or derives it (a rule head: preferred over a declaration)."""
    out: dict[tuple[str, int], str] = {}
    for stm in statements:
        sigs = _defines(stm)
        if not sigs:
            continue
        loc = stm.location.begin if "location" in stm.keys() else None
        where = f"{display_path(loc.filename)}:{loc.line}" if loc is not None else "the standard rules"
        derived = stm.ast_type != ast.ASTType.Defined
        for sig in sigs:
            if sig not in out or (derived and out[sig].startswith("#defined ")):
                out[sig] = where if derived else f"#defined {where}"
    return {sig: w.removeprefix("#defined ") for sig, w in out.items()}


_EXTENSION = None


def extension_points() -> frozenset[tuple[str, int]]:
    """The predicates encodings/interface.lp declares with ``%@extension name/arity``: the only
    engine predicates a profile, policy package or user rule file may derive."""
    global _EXTENSION
    if _EXTENSION is None:
        import re

        text = (refdata.ENCODINGS / "interface.lp").read_text(encoding="utf-8")
        _EXTENSION = frozenset(
            (m.group(1), int(m.group(2)))
            for m in re.finditer(r"^%@extension\s+([a-z_][A-Za-z0-9_']*)/(\d+)\s*$", text, re.M)
        )
    return _EXTENSION


# outputs whose every derivation a coder reads: a user rule deriving them must carry %@rule/%@text
TAGGED_OUTPUTS = frozenset({("finding", 4), ("payer_drop", 3)})


def overrides(text: str, display: str, known: dict[tuple[str, int], str]) -> tuple[set[tuple[str, int]], list[str]]:
    """The ``%@override name/arity`` pragmas of a rule file, and the problems with them."""
    import re

    out: set[tuple[str, int]] = set()
    problems: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        m = re.match(r"^\s*%@override\b(.*)$", line)
        if not m:
            continue
        items = m.group(1).split()
        if not items:
            problems.append(f"{display}:{lineno}: %@override needs name/arity (e.g. %@override dur/3)")
        for item in items:
            mm = re.fullmatch(r"([a-z_][A-Za-z0-9_']*)/(\d+)", item)
            if not mm:
                problems.append(f"{display}:{lineno}: %@override {item}: write name/arity (e.g. dur/3)")
                continue
            sig = (mm.group(1), int(mm.group(2)))
            if sig not in known:
                problems.append(f"{display}:{lineno}: %@override {item}: the standard rules have no predicate "
                                f"{item} (nothing to override)")
            elif sig in extension_points():
                problems.append(f"{display}:{lineno}: %@override {item}: {item} is an extension point of "
                                "encodings/interface.lp; derive it without %@override")
            else:
                out.add(sig)
    return out, problems


_ONE_ANSWER = {
    "Aggregate": "a choice rule ({...})",
    "HeadAggregate": "an aggregate in a rule head",
    "Disjunction": "a disjunction or a conditional head (a;b or a:b)",
}
_REJECTED_STATEMENTS = {
    "Minimize": ("#minimize/#maximize and weak constraints (:~) are not allowed: a claim is one answer, "
                 "not an optimum"),
    "ShowTerm": "#show of a term is not allowed: it would show atoms no rule derives",
    "ProjectSignature": "#project is not allowed: a claim is one answer",
    "ProjectAtom": "#project is not allowed: a claim is one answer",
    "Heuristic": "#heuristic is not allowed: a claim is one answer",
    "Script": "#script is not allowed in a rule file",
    "External": "#external is not allowed: an external atom is a choice the program does not make",
}


def _file_defines(path: Path) -> set[tuple[str, int]]:
    """The predicates a rule file defines (a file that does not parse defines none here; the
    check of that file reports it)."""
    stms: list[Any] = []
    try:
        ast.parse_files([str(path)], stms.append, logger=lambda _c, _m: None)
    except RuntimeError:
        return set()
    out: set[tuple[str, int]] = set()
    for stm in stms:
        out.update(_defines(stm))
    return out


def check_rule_file(path: Path, display: str, known: "dict[tuple[str, int], str] | set[tuple[str, int]]",
                    shared: "set[tuple[str, int]] | frozenset[tuple[str, int]]" = frozenset()) -> set[tuple[str, int]]:
    """Check a profile, policy-package or user rule file against the interface; return the
    predicates it defines. Raises :class:`EncodingError` naming file:line:column and the
    predicate when the file

    * does not parse;
    * derives an engine predicate that is not an extension point of encodings/interface.lp
      (``%@extension``) without declaring ``%@override name/arity`` (namespaces);
    * reuses an engine predicate's name with another arity;
    * makes a choice: a choice rule, a disjunction or conditional head, an aggregate head,
      #minimize/#maximize, a weak constraint, #external, #heuristic, #project (one answer);
      or holds #show, #script or a #program part other than base;
    * derives finding/4 or payer_drop/3 with an untagged rule (no sentence for the coder);
    * reads a predicate in a body that nobody declares or derives.

    ``known`` maps each standard predicate to where it is defined; ``shared`` are the
    predicates of the profile and user files loaded before this one (files of one policy
    package may share helpers)."""
    if not isinstance(known, dict):
        known = {sig: "the standard rules" for sig in known}
    stms: list[Any] = []
    messages: list[str] = []
    try:
        ast.parse_files([str(path)], stms.append, logger=lambda _c, m: messages.append(m))
    except RuntimeError:
        detail = "; ".join(m.strip().replace(str(path), display) for m in messages) or "syntax error"
        raise EncodingError(detail if detail.startswith(display) else f"{display}: {detail}") from None
    try:
        text = Path(path).read_text(encoding="utf-8")
        tagged = {t.line for t in parse_tags(Path(path), display)}
    except TagError as exc:
        raise EncodingError(str(exc)) from None
    allowed, problems = overrides(text, display, known)
    extensions = extension_points()
    own: set[tuple[str, int]] = set()
    for stm in stms:
        own.update(_defines(stm))
    reported: set[tuple[str, int]] = set()
    names: dict[str, list[int]] = {}
    for name, arity in known:
        names.setdefault(name, []).append(arity)
    for stm in stms:
        kind = str(stm.ast_type).rsplit(".", 1)[-1]
        loc0 = stm.location.begin if "location" in stm.keys() else None
        here = f"{display}:{loc0.line}:{loc0.column}" if loc0 is not None else display
        if kind in _REJECTED_STATEMENTS:
            problems.append(f"{here}: {_REJECTED_STATEMENTS[kind]}")
            continue
        if kind == "ShowSignature":
            # a view of the file's own predicates (oncologic report adds one) decides nothing;
            # showing an engine predicate would put internal atoms into the answers
            sig = (stm.name, stm.arity)
            if sig in known or sig not in own:
                problems.append(f"{here}: #show {stm.name}/{stm.arity}: a rule file may show only predicates it "
                                "defines itself (encodings/interface.lp decides what of the engine is shown)")
            continue
        if kind == "Program" and stm.name != "base":
            problems.append(f"{here}: #program {stm.name} is not allowed: only the base part is grounded")
            continue
        if stm.ast_type != ast.ASTType.Rule:
            continue
        head_kind = str(stm.head.ast_type).rsplit(".", 1)[-1]
        if head_kind in _ONE_ANSWER:
            problems.append(f"{here}: {_ONE_ANSWER[head_kind]} is not allowed in a rule file: "
                            "the program must have exactly one answer (derive the atom with a plain rule)")
        heads: list = []
        if head_kind not in _ONE_ANSWER:
            _atoms(stm.head, heads)
        for atom in heads:
            sig = _signature(atom)
            if sig is None:
                continue
            loc = _where(atom, stm)
            at = f"{display}:{loc.line}:{loc.column}"
            if sig in TAGGED_OUTPUTS and stm.location.begin.line not in tagged:
                problems.append(f"{at}: a rule deriving {sig[0]}/{sig[1]} needs %@rule and %@text above it "
                                "(the coder reads its sentence)")
            if sig in extensions or sig in allowed:
                continue
            if sig in known:
                if sig in reported:
                    continue
                reported.add(sig)
                problems.append(
                    f"{at}: {sig[0]}/{sig[1]} is an engine-internal predicate ({known[sig]}): a rule file may "
                    "derive only the extension points of encodings/interface.lp and predicates of its own; "
                    f"rename yours, or put `%@override {sig[0]}/{sig[1]}` in the file to add to the engine's on purpose")
            elif sig[0] in names:
                arities = sorted(names[sig[0]])
                problems.append(f"{at}: {sig[0]}/{sig[1]} has the wrong arity: "
                                f"the interface has {', '.join(f'{sig[0]}/{a}' for a in arities)}")
        body: list = []
        for lit in stm.body:
            _atoms(lit, body)
        for atom in body:
            sig = _signature(atom)
            if sig is None or sig in known or sig in own or sig in shared:
                continue
            loc = _where(atom, stm)
            problems.append(f"{display}:{loc.line}:{loc.column}: {sig[0]}/{sig[1]} is not declared in "
                            "encodings/interface.lp, not derived by any standard rule and not defined in this file")
    if problems:
        raise EncodingError("\n".join(dict.fromkeys(problems)))
    return own


# ------------------------------------------------------------------------------------------
# symbols


def to_symbol(arg: Any) -> clingo.Symbol:
    if isinstance(arg, bool):
        raise TypeError("booleans are not facts")
    if isinstance(arg, int):
        return clingo.Number(arg)
    if isinstance(arg, Const):
        return clingo.Function(arg.name)
    if isinstance(arg, Fn):
        return clingo.Function(arg.name, [to_symbol(a) for a in arg.args])
    if isinstance(arg, str):
        return clingo.String(arg)
    if isinstance(arg, tuple):
        return clingo.Tuple_([to_symbol(a) for a in arg])
    raise TypeError(f"cannot make a fact argument of {type(arg).__name__}")


def from_symbol(sym: clingo.Symbol) -> Any:
    t = sym.type
    if t == clingo.SymbolType.Number:
        return sym.number
    if t == clingo.SymbolType.String:
        return sym.string
    if t == clingo.SymbolType.Function:
        if not sym.arguments:
            return Const(sym.name) if sym.name else ()
        args = tuple(from_symbol(a) for a in sym.arguments)
        return args if not sym.name else Fn(sym.name, args)
    if t == clingo.SymbolType.Infimum:
        return Const("#inf")
    return Const("#sup")


def ground_literal(text: str, binding: dict[str, Any]) -> tuple[str, Optional[tuple], str]:
    """Substitute variable values into the text of a body literal (``TaggedRule.body``) for
    ``oncologic explain``: returns (predicate, arguments as Python values or None when some
    variable, e.g. ``_``, stays unbound, the literal's text with the values filled in)."""
    term = _literal_term(text)

    class _Subst(ast.Transformer):
        def visit_Variable(self, node):  # noqa: N802 - clingo naming
            if node.name in binding:
                return ast.SymbolicTerm(node.location, to_symbol(binding[node.name]))
            return node

    filled = _Subst()(term)
    shown = str(filled)
    if _vars(filled) or "_" in _free(filled):
        name = term.name if term.ast_type == ast.ASTType.Function else shown
        return name, None, shown
    sym = clingo.parse_term(shown)
    return sym.name, tuple(from_symbol(a) for a in sym.arguments), str(sym)


def _free(node) -> set[str]:
    names: set[str] = set()

    class _All(ast.Transformer):
        def visit_Variable(self, var):  # noqa: N802 - clingo naming
            names.add(var.name)
            return var

    _All()(node)
    return names


_LITERALS: dict[str, Any] = {}


def _literal_term(text: str):
    term = _LITERALS.get(text)
    if term is None:
        found: list = []
        ast.parse_string(f"#false :- {text}.", lambda stm: found.append(stm) if stm.ast_type == ast.ASTType.Rule else None)
        term = found[0].body[0].atom.symbol
        _LITERALS[text] = term
    return term


# ------------------------------------------------------------------------------------------
# solving


@dataclass
class Answer:
    """The shown atoms of one encounter, as Python values, plus the provenance records."""

    atoms: dict[str, list[tuple]] = field(default_factory=dict)
    why: dict[tuple, list[tuple[int, tuple]]] = field(default_factory=dict)


_STRICT_CODES = {clingo.MessageCode.OperationUndefined, clingo.MessageCode.RuntimeError}


def _strings(args: Iterable[Any], out: set[str]) -> None:
    for a in args:
        if isinstance(a, str):
            out.add(a)
        elif isinstance(a, (Fn,)):
            _strings(a.args, out)


def reference_text(facts: Sequence[Fact], prog: Program) -> str:
    """The reference facts this batch can use: rows about the codes in its input or in the rules."""
    batch: set[str] = set()
    days: set[int] = set()
    for name, args in facts:
        _strings(args, batch)
        if name == "dos":  # the dates of service pick the table versions (refdata.versions_for)
            days.add(args[1])
    return refdata.select_facts(batch, program_codes(prog), frozenset(days))



def _solve_from_sources(prog: Program, facts, extra, strict: bool):
    """Solve again with the program parsed from the rule files instead of the on-disk cache:
    statements read from the cache have no file locations, so a problem is said from the sources."""
    _CACHE.pop(prog.files, None)
    _NO_DISK_CACHE.append(True)
    try:
        return solve(facts, extra, strict)
    finally:
        _NO_DISK_CACHE.pop()

def solve(facts: Sequence[Fact], extra: Sequence[Path] = (), strict: bool = True) -> tuple[Program, dict[int, Answer]]:
    """Ground and solve one batch; return the answers keyed by encounter number."""
    prog = load_program(extra)
    problems: list[str] = []

    def logger(code, msg):
        # "no atoms over signature" only says a #show signature is empty for this batch
        if code == clingo.MessageCode.AtomUndefined and "no atoms over signature" in msg:
            return
        if code in _STRICT_CODES or code == clingo.MessageCode.AtomUndefined:
            problems.append(msg.strip())

    ctl = clingo.Control(["--warn=all" if strict else "--warn=none"], logger=logger)
    statements = prog.statements
    # clingo's AST objects are shared by every solve of the process; adding them to a Control is
    # not safe from two threads at once (the Dask runner solves in threads), so it is serialised.
    # Grounding and solving, the expensive parts, still run in parallel.
    with _BUILD_LOCK:
        if isinstance(statements, _LazyStatements) and not statements.parsed and not statements.solved:
            # first solve of this process from the cached text (a one-shot CLI call): clingo
            # parses it directly; later solves (batch workers) re-use the parsed AST, which adds faster
            statements.solved = True
            ctl.add("base", [], statements.text)
        else:
            with ast.ProgramBuilder(ctl) as builder:
                for stm in statements:
                    builder.add(stm)
    ctl.add("base", [], reference_text(facts, prog))
    _add_facts(ctl, facts)
    if _RETAINED is not None:
        _RETAINED.append(ctl)
    try:
        ctl.ground([("base", [])])
    except RuntimeError as exc:
        # clingo's own errors (unsafe variables, ...): its messages, with the rule file's name
        if getattr(prog, "from_cache", False):
            return _solve_from_sources(prog, facts, extra, strict)
        # the provenance copy of a rule (_why) repeats the message of the rule itself
        detail = "; ".join(_displayed(m) for m in problems if f"{WHY}(" not in m) or str(exc)
        raise EncodingError(detail) from None
    if strict and problems:
        if getattr(prog, "from_cache", False):
            return _solve_from_sources(prog, facts, extra, strict)
        raise StrictModeError("; ".join(problems))
    answers: dict[int, Answer] = {}
    models = 0
    # one answer, checked: clingo is asked for two models (ONE_ANSWER_MODELS), and a second one
    # is an error rather than an arbitrary pick. The program is stratified, so the first model is
    # found by propagation alone and the search for a second fails at once (docs/performance.md).
    ctl.configuration.solve.models = ONE_ANSWER_MODELS
    with ctl.solve(yield_=True) as handle:
        for model in handle:
            models += 1
            if models > 1:
                raise SecondModelError(
                    "the rules have more than one answer for this batch (a choice somewhere: the claim would be "
                    f"an arbitrary pick); rule files in play: {', '.join(_user_files(prog)) or 'the standard rules'}")
            _collect(model.symbols(shown=True), answers)
    if models == 0:
        raise unsat_report(facts, extra, prog)
    return prog, answers


def _displayed(message: str) -> str:
    """A clingo message with the rule files' absolute paths shown as in other messages."""
    root = str(refdata.ROOT.resolve()) + "/"
    return " ".join(message.replace(root, "").replace(":-[#inc_base];", ":-").replace("[#inc_base];", "").split())


def _user_files(prog: Program) -> list[str]:
    """The profile, policy-package and user rule files of a program, as messages show them."""
    standard = {str(p) for p in refdata.rule_files()}
    return [display_path(f) for f in prog.files if f not in standard]


VIOLATED = "_violated"


def unsat_report(facts: Sequence[Fact], extra: Sequence[Path], prog: Program) -> UnsatisfiableError:
    """Why a batch has no answer set: re-solve from the sources with every integrity constraint
    ``:- Body.`` turned into an atom ``_violated(K,E) :- Body.`` (the program is then stratified and
    has one model), and name the constraints whose atoms hold, with file:line, their rule id when
    tagged, and the encounters. Runs only when a solve found no model."""
    files = [*refdata.rule_files(), *extra]
    constraints: list[tuple[str, int, Optional[RuleTag]]] = []
    statements: list[Any] = []
    for path in files:
        display = display_path(path)
        try:
            tags = {t.line: t for t in parse_tags(Path(path), display)}
        except TagError:
            tags = {}

        def on_stm(stm, display=display, tags=tags) -> None:
            if stm.ast_type == _COMMENT:
                return
            if stm.ast_type == ast.ASTType.Rule and _is_constraint(stm):
                loc = stm.location
                line = loc.begin.line
                number = len(constraints)
                constraints.append((display, line, tags.get(line)))
                enc = ast.Variable(loc, "E") if "E" in _global_vars(stm) else ast.SymbolicTerm(loc, clingo.Number(0))
                head = ast.SymbolicAtom(ast.Function(loc, VIOLATED, [ast.SymbolicTerm(loc, clingo.Number(number)), enc], 0))
                stm = ast.Rule(loc, ast.Literal(loc, ast.Sign.NoSign, head), stm.body)
            statements.append(stm)

        ast.parse_files([str(path)], on_stm)
    users = _user_files(prog)
    in_play = f"rule files in play: {', '.join(users) or 'the standard rules only'}"
    ctl = clingo.Control(["--warn=none"])
    with ast.ProgramBuilder(ctl) as builder:
        for stm in statements:
            builder.add(stm)
    ctl.add("base", [], reference_text(facts, prog))
    ctl.add("base", [], f"#show {VIOLATED}/2.")
    _add_facts(ctl, facts)
    ctl.ground([("base", [])])
    fired: dict[int, set[int]] = {}
    with ctl.solve(yield_=True) as handle:
        for model in handle:
            for sym in model.symbols(shown=True):
                if sym.name == VIOLATED:
                    fired.setdefault(sym.arguments[0].number, set()).add(sym.arguments[1].number)
            break
    if not fired:
        return UnsatisfiableError("the rules have no answer for this batch, and no integrity constraint fired "
                                  f"(a contradiction such as p and -p both derived?); {in_play}")
    parts = []
    for number in sorted(fired):
        display, line, tag = constraints[number]
        encs = sorted(e for e in fired[number] if e)
        parts.append(f"{display}:{line}" + (f" [rule {tag.id}]" if tag else "")
                     + (f" (encounter{'s' if len(encs) > 1 else ''} {', '.join(map(str, encs))} of the batch)" if encs else ""))
    return UnsatisfiableError(f"the rules have no answer for this batch: integrity constraint{'s' if len(parts) > 1 else ''} "
                              f"fired: {'; '.join(parts)}; {in_play}")


# Performance (docs/performance.md): facts and answers cross the Python/clingo boundary one CFFI
# call at a time, so both directions memoise. Input arguments repeat (encounter numbers, small
# ints, constants, codes): their symbols are built once per batch. Output symbols are interned by
# clingo, so equal sub-terms have equal ``_rep`` handles: each distinct sub-term (a line key, a
# constant, a code) is converted once per solve. The garbage collector is paused while the
# answer's tuples are built (no cycles are created).

_NO_DISK_CACHE: list[bool] = []
_RETAINED: Optional[list[Any]] = None


def retain_controls() -> None:
    """Keep every Control of this process alive until it exits: a forked batch child that
    ends with ``os._exit`` skips clingo's teardown of each ground program."""
    global _RETAINED
    if _RETAINED is None:
        _RETAINED = []
_HAS_REP = hasattr(clingo.Number(0), "_rep")


def _add_facts(ctl: "clingo.Control", facts: Sequence[Fact]) -> None:
    memo: dict[tuple[type, Any], clingo.Symbol] = {}
    function = clingo.Function
    with ctl.backend() as backend:
        if _HAS_REP and hasattr(backend, "_rep") and _add_facts_fast(backend, facts):
            return
        add_atom = backend.add_atom
        add_rule = backend.add_rule
        for name, args in facts:
            syms = []
            for a in args:
                k = (type(a), a)
                s = memo.get(k)
                if s is None:
                    s = memo[k] = to_symbol(a)
                syms.append(s)
            add_rule([add_atom(function(name, syms))])


def _add_facts_fast(backend: Any, facts: Sequence[Fact]) -> bool:
    """The facts through the clingo C API of the package's cffi binding (the same calls as
    ``Function``/``Backend.add_atom``/``Backend.add_rule``, without their per-call wrappers).
    False when the binding is not the expected one (nothing has been added then)."""
    try:
        from clingo._internal import _ffi, _lib

        create, add_atom, rule = _lib.clingo_symbol_create_function, _lib.clingo_backend_add_atom, _lib.clingo_backend_rule
        brep = backend._rep
        buf = _ffi.new("clingo_symbol_t[]", 32)
        p_sym = _ffi.new("clingo_symbol_t*")
        p_atom = _ffi.new("clingo_atom_t*")
        head = _ffi.new("clingo_atom_t[]", 1)
        null = _ffi.NULL
    except Exception:  # noqa: BLE001
        return False

    def check(ok: bool) -> None:
        if not ok:
            raise RuntimeError(_ffi.string(_lib.clingo_error_message()).decode())

    memo: dict[tuple[type, Any], int] = {}
    names: dict[str, bytes] = {}
    for name, args in facts:
        n = len(args)
        if n > len(buf):
            buf = _ffi.new("clingo_symbol_t[]", 2 * n)
        for i, a in enumerate(args):
            k = (type(a), a)
            r = memo.get(k)
            if r is None:
                r = memo[k] = to_symbol(a)._rep
            buf[i] = r
        bname = names.get(name)
        if bname is None:
            bname = names[name] = name.encode()
        check(create(bname, buf, n, True, p_sym))
        check(add_atom(brep, p_sym, p_atom))
        head[0] = p_atom[0]
        check(rule(brep, False, head, 1, null, 0))
    return True


def _rep_decoder(memo: dict[Any, Any]):
    """A converter from clingo symbol handles (``Symbol._rep``) to Python values that calls the
    clingo C API through the package's own cffi binding, skipping the per-call wrappers of
    ``clingo.Symbol`` (about 3x faster). Returns None when the binding is not the one this was
    written against (another clingo version): the caller then uses the public API."""
    try:
        from clingo._internal import _ffi, _lib

        t_num, t_str, t_fun = _lib.clingo_symbol_type_number, _lib.clingo_symbol_type_string, _lib.clingo_symbol_type_function
        sym_type, sym_number, sym_string = _lib.clingo_symbol_type, _lib.clingo_symbol_number, _lib.clingo_symbol_string
        sym_arguments, sym_name = _lib.clingo_symbol_arguments, _lib.clingo_symbol_name
        p_int = _ffi.new("int*")
        p_str = _ffi.new("char**")
        p_args = _ffi.new("clingo_symbol_t**")
        p_size = _ffi.new("size_t*")
        unpack, cstring = _ffi.unpack, _ffi.string
    except Exception:  # noqa: BLE001
        return None

    get = memo.get

    def value(rep: int) -> Any:
        v = get(rep)
        if v is not None:
            return v
        t = sym_type(rep)
        if t == t_num:
            sym_number(rep, p_int)
            v = p_int[0]
        elif t == t_str:
            sym_string(rep, p_str)
            v = cstring(p_str[0]).decode()
        elif t == t_fun:
            sym_arguments(rep, p_args, p_size)
            size = p_size[0]
            reps = unpack(p_args[0], size) if size else ()
            sym_name(rep, p_str)
            n = cstring(p_str[0]).decode()
            if not reps:
                v = Const(n) if n else ()
            else:
                # the memo is checked inline: most sub-terms repeat (a call per argument costs more)
                vals = tuple([w if (w := get(x)) is not None else value(x) for x in reps])
                v = Fn(n, vals) if n else vals
        else:
            v = from_symbol(clingo.Symbol(rep))  # type: ignore[call-arg]
        memo[rep] = v
        return v

    probe = clingo.Function("p", [clingo.Number(-3), clingo.String("x\"y"), clingo.Function("", [clingo.Function("c")])])
    try:
        if value(probe._rep) != from_symbol(probe):
            return None
    except Exception:  # noqa: BLE001
        return None
    memo.clear()
    return value


def _collect(symbols: Sequence[clingo.Symbol], answers: dict[int, Answer]) -> None:
    """Decode the shown symbols (through the cffi fast path when it is available, else the
    public API, both memoised) and sort them into the answers of their encounters."""
    if _HAS_REP:
        fast = _rep_decoder({})
        if fast is not None:
            _collect_values([fast(s._rep) for s in symbols], answers)
            return
    NUMBER, STRING, FUNCTION = clingo.SymbolType.Number, clingo.SymbolType.String, clingo.SymbolType.Function
    memo: dict[Any, Any] = {}

    def value(sym: clingo.Symbol) -> Any:
        k = sym._rep if _HAS_REP else sym
        v = memo.get(k)
        if v is not None:
            return v
        t = sym.type
        if t == NUMBER:
            v = sym.number
        elif t == STRING:
            v = sym.string
        elif t == FUNCTION:
            sargs = sym.arguments
            n = sym.name
            if not sargs:
                v = Const(n) if n else ()
            else:
                vals = tuple([value(x) for x in sargs])
                v = Fn(n, vals) if n else vals
        else:
            v = from_symbol(sym)
        memo[k] = v
        return v

    _collect_values([value(s) for s in symbols], answers)


def _collect_values(atoms: Sequence[Any], answers: dict[int, Answer]) -> None:
    """Sort decoded shown atoms (``Fn`` values) into the answers of their encounters."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        for atom in atoms:
            if type(atom) is not Fn:
                continue
            name, args = atom
            if name == WHY:
                if len(args) < 2:
                    continue
                head = args[1]
                if type(head) is not Fn or not head.args or type(head.args[0]) is not int:
                    continue
                ans = answers.get(head.args[0])
                if ans is None:
                    ans = answers[head.args[0]] = Answer()
                key = (head.name, head.args[1:])
                rec = (args[0], args[2:])
                lst = ans.why.get(key)
                if lst is None:
                    ans.why[key] = [rec]
                else:
                    lst.append(rec)
                continue
            first = args[0]
            if type(first) is not int:
                continue
            ans = answers.get(first)
            if ans is None:
                ans = answers[first] = Answer()
            lst = ans.atoms.get(name)
            if lst is None:
                ans.atoms[name] = [args[1:]]
            else:
                lst.append(args[1:])
    finally:
        if enabled:
            gc.enable()
