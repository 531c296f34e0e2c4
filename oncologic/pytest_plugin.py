"""pytest plugin: YAML case files under any folder named ``cases`` become test items.

Installed with oncologic (entry point ``pytest11``), so a user's own repository of cases runs
under plain ``pytest`` too. All cases of one file are solved in one batch; each case is
still its own test item with its own pass/fail and a readable diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("oncologic", "oncologic case files")
    group.addoption("--oncologic-time-limit", type=float, default=None, metavar="SECONDS",
                    help="time limit of each solve of case files (default: ONCOLOGIC_TIME_LIMIT or 120; 0 = none)")
    group.addoption("--oncologic-memory-limit", type=float, default=None, metavar="MB",
                    help="memory limit of each solve of case files (default: ONCOLOGIC_MEMORY_LIMIT or 4096; 0 = none)")


def _limits(config):
    from .limits import Limits, default_limits

    base = default_limits()
    t = config.getoption("--oncologic-time-limit", None)
    m = config.getoption("--oncologic-memory-limit", None)
    return Limits(base.time_s if t is None else t, base.memory_mb if m is None else m)


def pytest_collect_file(parent, file_path: Path):
    if file_path.suffix in (".yaml", ".yml") and "cases" in file_path.parts:
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFile(pytest.File):
    def collect(self):
        from .cases import CaseFileError, load_cases

        try:
            self._cases = load_cases(Path(self.path))
        except CaseFileError as exc:
            raise self.CollectError(str(exc)) from None
        self._outcomes = None
        for case in self._cases:
            yield CaseItem.from_parent(self, name=case.name, case=case)

    def outcomes(self):
        if self._outcomes is None:
            from .cases import run_cases

            results = run_cases(self._cases, limits=_limits(self.config))
            self._outcomes = {c.index: r for c, r in zip(self._cases, results)}
        return self._outcomes


class CaseFailure(Exception):
    pass


class CaseItem(pytest.Item):
    def __init__(self, *, case, **kw):
        super().__init__(**kw)
        self.case = case

    def runtest(self):
        outcome = self.parent.outcomes()[self.case.index]
        if outcome.skipped:
            pytest.skip(outcome.skipped)
        if outcome.limit:
            raise CaseFailure(f"{self.case.id}: {outcome.limit}")
        if outcome.failures:
            from .cases import report

            raise CaseFailure(report(outcome))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CaseFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.case.index, f"case: {self.case.name}"
