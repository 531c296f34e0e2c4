"""oncologic: oncology infusion encounters in, clean claim lines out, with the reason for every line.

The coding rules are answer-set programs in ``encodings/``; this package validates input
(:mod:`oncologic.load`), builds facts (:mod:`oncologic.facts`), solves
(:mod:`oncologic.engine`, the only module that imports clingo) and renders claims
(:mod:`oncologic.render`). Start with :func:`oncologic.solver.code_encounters`.
"""

__version__ = "0.1.0"
