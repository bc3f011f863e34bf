"""Which recorded bench units today's code no longer matches, and the commands that record them anew.

The same comparison as tests/test_bench_fresh.py (each unit's stamp against the fingerprint of its
bench's ``SOURCES`` in the working tree), for planning a re-run after a change: one line a unit, the
files that changed since it was measured, then the distinct commands in the order given. Exit status 1
if anything is stale, so that a script can wait on it.

    .venv/bin/python bench/stale.py
    .venv/bin/python bench/stale.py --json
"""

import argparse
import glob
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.results import OUT_DIR, bench_module, bench_units, changes, fingerprint, read, record_command, unit_name  # noqa: E402


def stale_units():
    """``[{"unit", "changed", "command"}]`` for every recorded unit whose stamp differs from today's
    fingerprint of its bench's sources, or that carries no stamp."""
    found = []
    for file in sorted(glob.glob(os.path.join(OUT_DIR, "*.json"))):
        name = os.path.basename(file)[:-len(".json")]
        recorded = read(name)
        today = fingerprint(bench_module(name).SOURCES)
        for label, unit in bench_units(name, recorded).items():
            changed = changes(unit["sources"], today) if "sources" in unit else "no stamp"
            if changed:
                found.append({"unit": unit_name(name, label), "changed": changed,
                              "command": record_command(name, label, recorded)})
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    args = parser.parse_args()
    found = stale_units()
    if args.json:
        print(json.dumps(found, indent=1))
    else:
        for entry in found:
            print(f"{entry['unit']}: {entry['changed']}")
        commands = list(dict.fromkeys(entry["command"] for entry in found))
        print(f"{len(found)} stale unit(s)" + (", recorded anew by:" if commands else ""))
        for command in commands:
            print(f"  {command}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
