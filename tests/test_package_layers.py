"""The packages' layers: :mod:`layout` is what the gateware and the host share, so neither needs the
other (and :mod:`model` needs none of them); :mod:`interop`, the optional extra's code, stands on
:mod:`model` and nothing in the core imports it."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# the packages each package may import (besides itself and outside libraries)
ALLOWED = {
    "model": set(),
    "layout": {"model"},
    "hw": {"model", "layout"},
    "host": {"model", "layout"},
    "interop": {"model", "layout"},
}
PACKAGES = {"model", "layout", "hw", "host", "sim", "bnn", "interop"}


# an import statement at any indentation (not `ast`: CPython 3.11 can fail to parse after an
# earlier test's deep recursion, "AST constructor recursion depth mismatch")
IMPORT = re.compile(r"^\s*(?:from\s+(\w+)[\w.]*\s+import\b|import\s+(\w+))", re.M)


def imported_packages(path):
    """The first-level names of the repository's packages that ``path`` imports (relative imports
    are its own package)."""
    return {a or b for a, b in IMPORT.findall(path.read_text())} & PACKAGES


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_the_layers_below_it(package):
    wrong = {str(path.relative_to(ROOT)): sorted(imported_packages(path) - ALLOWED[package] - {package})
             for path in sorted((ROOT / package).glob("*.py"))}
    assert {path: names for path, names in wrong.items() if names} == {}


@pytest.mark.parametrize("package", ["model", "layout", "hw", "host", "sim"])
def test_no_core_package_imports_the_optional_interop(package):
    assert [str(path.relative_to(ROOT)) for path in sorted((ROOT / package).rglob("*.py"))
            if "interop" in imported_packages(path)] == []


def test_the_check_sees_an_import():
    assert imported_packages(ROOT / "host" / "board.py") == {"layout"}
