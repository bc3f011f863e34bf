"""The benches' results, ``bench/out/<name>.json``: committed, since the README's tables are printed
from them (each bench's ``--markdown``) and tests/test_readme_figures.py checks the README against them.
"""

import json
import os

from model.fileio import write_atomically

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


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
    meanwhile (a board row, a part of the bench) is kept."""
    results = merge(read(name) if os.path.exists(path(name)) else {})
    write(name, results)
    return results
