"""The committed bench results come from today's code, and the cheap ones are measured again here.

Each unit a bench records in ``bench/out/<name>.json`` (a row, a part or the whole file: see
bench/results.py) carries the fingerprint of its bench's ``SOURCES`` when it was measured; it must
equal their fingerprint now, or a code change may have moved its figures since: re-record it with
the command the failure names. Each bench's ``SOURCES`` must hold every repository module it imports.
The accuracy bench's digits rows train in seconds: they are trained again here and must equal the
record exactly.
"""

import ast
import functools
import glob
import json
import os
import subprocess
import sys

import pytest

from bench import results, train_accuracy
from bench.results import ROOT, bench_module, bench_units, digest, is_under

NAMES = sorted(os.path.basename(p)[:-len(".json")] for p in glob.glob(os.path.join(results.OUT_DIR, "*.json")))
UNITS = [(name, label) for name in NAMES for label in bench_units(name, results.read(name))]
# every bench that records (it declares SOURCES): those with results on file and any other
STAMPING = sorted(name[:-len(".py")] for name in os.listdir(os.path.join(ROOT, "bench"))
                  if name.endswith(".py") and hasattr(bench_module(name[:-len(".py")]), "SOURCES"))
DIGITS_ROWS = [row for row, argv in train_accuracy.ROWS.items() if argv[argv.index("--dataset") + 1] == "digits"]
# what a training row records besides its figures: its times, its command (with the output path), the
# BLAS core type and the stamp
RUN_DETAILS = {"seconds", "teacher_seconds", "command", "openblas_coretype", "sources"}


@functools.cache
def _today(name):
    """The fingerprint of the bench ``name``'s sources in the working tree."""
    return results.fingerprint(bench_module(name).SOURCES)


@pytest.mark.parametrize("name, label", UNITS, ids=[f"{name}-{label}" if label else name for name, label in UNITS])
def test_each_recorded_unit_was_measured_by_today_s_code(name, label):
    recorded = results.read(name)
    unit = bench_units(name, recorded)[label]
    where, command = results.unit_name(name, label), results.record_command(name, label, recorded)
    assert "sources" in unit, f"{where} carries no stamp: re-record it with `{command}`"
    changed = results.changes(unit["sources"], _today(name))
    assert not changed, f"{where} was measured by other code ({changed} since): re-record it with `{command}`"


def _module_files(name):
    """The repository files that importing the module ``name`` runs: its packages' ``__init__.py`` and its own."""
    parts = name.split(".")
    candidates = [os.path.join(*parts[:i], "__init__.py") for i in range(1, len(parts) + 1)]
    return {c.replace(os.sep, "/") for c in [*candidates, os.path.join(*parts) + ".py"]
            if os.path.isfile(os.path.join(ROOT, c))}


def _imports(file):
    """The absolute names of what the repository file ``file`` imports anywhere in its code (for
    ``from a import b``: ``a`` and ``a.b``, which may be a module)."""
    with open(os.path.join(ROOT, file), "rb") as f:
        tree = ast.parse(f.read())
    package = os.path.dirname(file).replace("/", ".")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            base = ".".join(part for part in (base, node.module) if part)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _imported_files(file):
    """The repository files ``file`` imports, directly or through one another; bench/results.py, the
    benches' bookkeeping, and what only it imports aside."""
    seen, todo = set(), [file]
    while todo:
        for name in _imports(todo.pop()):
            found = _module_files(name) - seen - {"bench/results.py"}
            seen |= found
            todo += found
    return seen


@pytest.mark.parametrize("name", STAMPING)
def test_a_bench_s_sources_hold_every_module_it_imports(name):
    sources = bench_module(name).SOURCES
    missing = sorted(f for f in _imported_files(f"bench/{name}.py") | {f"bench/{name}.py"} if not is_under(f, sources))
    absent = [source for source in sources if not os.path.exists(os.path.join(ROOT, source))]
    assert missing == absent == [], f"bench/{name}.py's SOURCES miss {missing} and name nothing at {absent}"


def test_a_python_file_s_digest_ignores_comments_docstrings_and_layout_but_not_code():
    code = b'"""Module."""\ndef f(x):\n    """Function."""\n    return x + 1\n'
    restyled = b'# a comment\ndef f(x):\n\n    return (x +\n            1)  # another\n'
    changed = b'def f(x):\n    return x + 2\n'
    assert digest("a.py", code) == digest("a.py", restyled) != digest("a.py", changed)
    assert digest("a.v", b"assign a = b;\n") != digest("a.v", b"assign a = b; // a comment\n")


def _train_row(row, out):
    """The accuracy bench's row ``row`` as it trains today, its model written to ``out``: in a process of
    its own, as the bench runs, where the model package puts BLAS on one thread before NumPy loads (this
    session loaded NumPy first)."""
    script = ("import json, sys; from bench.train_accuracy import ROWS, run_train_row; argv = ROWS[sys.argv[1]]; "
              "argv[argv.index('--out') + 1] = sys.argv[2]; print(json.dumps(run_train_row(sys.argv[1], argv)))")
    done = subprocess.run([sys.executable, "-c", script, row, out], cwd=ROOT, capture_output=True, text=True,
                          check=True, timeout=600)
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("row", DIGITS_ROWS)
def test_the_accuracy_bench_s_digits_rows_are_what_training_gives_today(row, tmp_path):
    measured = _train_row(row, str(tmp_path / f"{row}.bnn"))
    recorded = results.read("train_accuracy")
    figures = {key: value for key, value in bench_units("train_accuracy", recorded)[row].items()
               if key not in RUN_DETAILS}
    assert {key: value for key, value in measured.items() if key not in RUN_DETAILS} == figures, (
        f"bench/out/train_accuracy.json [{row}] is not what training gives today: re-record it with "
        f"`{results.record_command('train_accuracy', row, recorded)}`")


def test_the_stale_list_is_empty_when_every_unit_is_fresh():
    # bench/stale.py makes the comparison above for a re-run's plan: with every unit fresh (the test
    # above), it lists none
    from bench.stale import stale_units
    assert stale_units() == []


def test_the_stale_list_names_a_unit_of_other_code_and_one_without_a_stamp(tmp_path, monkeypatch):
    from bench import stale
    recorded = results.read("train_accuracy")
    first, second, *rest = recorded["rows"]
    file = sorted(first["sources"])[0]
    other_code = dict(first, sources={**first["sources"], file: "0" * 16})
    unstamped = {key: value for key, value in second.items() if key != "sources"}
    (tmp_path / "train_accuracy.json").write_text(json.dumps({"rows": [other_code, unstamped, *rest]}))
    monkeypatch.setattr(results, "OUT_DIR", str(tmp_path))
    monkeypatch.setattr(stale, "OUT_DIR", str(tmp_path))
    found = stale.stale_units()
    assert [(entry["unit"], entry["changed"]) for entry in found] == [
        (results.unit_name("train_accuracy", first["row"]), f"changed {file}"),
        (results.unit_name("train_accuracy", second["row"]), "no stamp")]
    assert [entry["command"] for entry in found] == [
        results.record_command("train_accuracy", row["row"], recorded) for row in (first, second)]
