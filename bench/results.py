"""The benches' results, ``bench/out/<name>.json``: committed, since the tables of README.md and
docs/results.md are printed from them (each bench's ``--markdown``) and tests/test_readme_figures.py
checks those documents against them.

Each recorded unit carries a stamp, ``"sources"``: the :func:`fingerprint` of its bench's ``SOURCES``
(the repository paths whose code determines its figures) when it was measured, so that
tests/test_bench_fresh.py can tell a figure recorded by other code than today's. A unit is what one
run measures and records on its own (:func:`units`): each row of a bench whose rows are merged by
name, else the whole file; a bench that merges other parts (bench/link.py, bench/sim_speed.py) says
which with its own ``units``. A bench computes its stamp once, when its run starts (the code the run
imported), and attaches it to each unit it measures, never to a unit it merely keeps from the file.
"""

import ast
import hashlib
import importlib
import json
import os

from model.fileio import write_atomically

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "bench", "out")
PYTHON = ".venv/bin/python"     # how the benches' commands are written (from the repository root)


def path(name):
    """The file of the results of the bench ``name``."""
    return os.path.join(OUT_DIR, f"{name}.json")


def read(name):
    """The recorded results of the bench ``name``."""
    with open(path(name)) as f:
        return json.load(f)


def write(name, results):
    """Record ``results`` as those of the bench ``name``: the whole file or, if the write fails, the old one."""
    os.makedirs(OUT_DIR, exist_ok=True)
    write_atomically(path(name), lambda f: json.dump(results, f, indent=1), text=True)


def update(name, merge):
    """Record ``merge(recorded)`` as the results of the bench ``name`` and return them, ``recorded``
    being those on file (``{}`` if none), read just before the write: what another run recorded
    meanwhile (a board row, a part of the bench) is kept, with its own stamp."""
    results = merge(read(name) if os.path.exists(path(name)) else {})
    write(name, results)
    return results


def _files(source):
    """The repository paths of the files at or under ``source`` (a repository path), none if it does
    not exist."""
    full = os.path.join(ROOT, source)
    if os.path.isfile(full):
        return [source]
    return [os.path.relpath(os.path.join(folder, name), ROOT).replace(os.sep, "/")
            for folder, _, names in os.walk(full) for name in names]


def is_under(file, sources):
    """Whether the repository path ``file`` is one of ``sources`` or in one of their folders."""
    return any(file == source or file.startswith(source.rstrip("/") + "/") for source in sources)


def _counted(file):
    """Whether ``file`` is code rather than Python's bytecode cache."""
    return "__pycache__" not in file.split("/") and not file.endswith(".pyc")


def _is_docstring(statement):
    """Whether ``statement`` (an AST node), first in its body, is a docstring."""
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) \
        and isinstance(statement.value.value, str)


def _without_docstrings(module):
    """``module`` (an AST) with the docstring of the module and of each class and function removed."""
    for node in ast.walk(module):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) \
                and node.body and _is_docstring(node.body[0]):
            node.body = node.body[1:]
    return module


def digest(file, data):
    """The short SHA-256 of the file ``file`` holding ``data`` (bytes): of its code for a Python file
    (``ast.dump`` of the module without docstrings, so that comments, docstrings and formatting do
    not count), of its bytes for any other. Raises SyntaxError for a Python file that does not parse."""
    if file.endswith(".py"):
        data = ast.dump(_without_docstrings(ast.parse(data, filename=file))).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def fingerprint(sources):
    """The stamp of the code under ``sources`` (repository paths, files or folders):
    ``{path: digest}`` for every file at or under them, sorted, ``__pycache__`` and ``*.pyc`` left
    out."""
    files = sorted({file for source in sources for file in _files(source) if _counted(file)})
    result = {}
    for file in files:
        with open(os.path.join(ROOT, file), "rb") as f:
            result[file] = digest(file, f.read())
    return result


def changes(recorded, today):
    """How the fingerprint ``today`` differs from ``recorded``, as text: the files changed, added
    and removed; "" if they are equal."""
    changed = sorted(file for file in recorded.keys() & today.keys() if recorded[file] != today[file])
    added, removed = sorted(today.keys() - recorded.keys()), sorted(recorded.keys() - today.keys())
    return "; ".join(f"{what} {', '.join(files)}"
                     for what, files in [("changed", changed), ("added", added), ("removed", removed)] if files)


def bench_module(name):
    """The module of the bench ``name`` (bench/<name>.py)."""
    return importlib.import_module(f"bench.{name}")


def units(results):
    """The units of a bench's ``results`` that carry their own stamp, ``{label: dict}``: each row of a
    bench whose rows are merged by name (a ``"rows"`` list whose dicts each name their ``"row"``),
    else the whole file (label ``""``)."""
    rows = results.get("rows")
    if rows and all(isinstance(row, dict) and "row" in row for row in rows):
        return {row["row"]: row for row in rows}
    return {"": results}


def unit_name(name, label):
    """How messages name the unit ``label`` of the bench ``name``'s results."""
    return f"bench/out/{name}.json" + (f" [{label}]" if label else "")


def bench_units(name, results):
    """:func:`units` of the results of the bench ``name``, or that bench's own ``units`` if it has one."""
    return getattr(bench_module(name), "units", units)(results)


def record_command(name, label, results):
    """The command that records the unit ``label`` of the bench ``name``'s ``results`` anew: that
    bench's own ``record_command(label, results)`` if it has one, else the bench with no arguments."""
    module = bench_module(name)
    if hasattr(module, "record_command"):
        return module.record_command(label, results)
    return f"{PYTHON} bench/{name}.py"
