"""The seeded-defect tables, one module per lab: `labNN.py` holds lab NN's `DEFECTS`, a tuple of `Defect`s.

A new lab's table is picked up by adding its module here; tests/engine/test_seeded_defects.py grades every
defect on the engine, and tests/unit/test_defect_tables.py checks every table without one.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

from seeded import Defect

TABLE_MODULE = re.compile(r"lab(\d\d)")


def table_modules() -> list[str]:
    """The names of every module in this package."""
    return sorted(module.name for module in pkgutil.iter_modules(__path__))


def tables() -> dict[str, tuple[Defect, ...]]:
    """Every lab's defects, by lab id ('01'), in lab order."""
    found = {}
    for name in table_modules():
        if match := TABLE_MODULE.fullmatch(name):
            found[match[1]] = importlib.import_module(f"{__name__}.{name}").DEFECTS
    return found
