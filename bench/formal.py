"""Every formal proof of sim.proofs, and every known defect brought back against its property.

Runs SymbiYosys (yowasp-sby, smtbmc with z3) on each proof of :data:`sim.proofs.PROOFS` and on each
mutant of :data:`sim.proofs.MUTANTS` (which must fail), and writes ``bench/out/formal.json``: per proof
its mode, depth, result and seconds; per mutant the defect, the result and the assertion that failed.
``--markdown`` prints the tables in docs/results.md. docs/formal.md says what each property means.

    .venv/bin/python bench/formal.py
    .venv/bin/python bench/formal.py --markdown
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.results import fingerprint, read, write  # noqa: E402
from sim.formal import failed_sources, run_proof, tool_environment  # noqa: E402
from sim.proofs import MUTANTS, PROOFS  # noqa: E402

# The code that determines the results (bench/results.py): the proofs and their runner, the gateware they
# prove, and the layouts and random model it is elaborated for.
SOURCES = ["bench/formal.py", "hw", "layout", "model", "sim/__init__.py", "sim/formal.py", "sim/proofs.py"]
MODE_TEXT = {"prove": "k-induction, depth {depth}: every cycle of every run",
             "bmc": "bounded: the first {depth} cycles from power-up",
             "cover": "reached within {depth} cycles"}


def _cell(text):
    return text.replace("|", "\\|")


def markdown(results):
    lines = ["| property | component | proof | result | seconds |", "|---|---|---|---|---|"]
    for row in results["proofs"]:
        lines.append(f"| {_cell(row['statement'])} | `{row['component']}` | "
                     f"{MODE_TEXT[row['mode']].format(depth=row['depth'])} | {row['status']} | {row['seconds']:.1f} |")
    lines += ["", "| defect brought back | proof | result | the assertion that fails |", "|---|---|---|---|"]
    for row in results["mutants"]:
        lines.append(f"| {_cell(row['defect'])} | {row['proof']} | {row['status']} | `{_cell(row['failed'][0])}` |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--markdown", action="store_true",
                        help="print the tables of docs/results.md from the JSON and exit")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(read("formal")))
        return 0
    stamp = fingerprint(SOURCES)
    tool_environment()
    results = {"proofs": [], "mutants": [], "sources": stamp}
    ok = True
    with tempfile.TemporaryDirectory(prefix="bnn-formal-") as work:
        for proof in PROOFS:
            result = run_proof(proof, work)
            print(f"{proof.name}: {result.status} in {result.seconds:.1f} s", flush=True)
            ok &= result.passed
            results["proofs"].append({"name": proof.name, "component": proof.component,
                                      "statement": proof.statement, "mode": proof.mode, "depth": proof.depth,
                                      "quick": proof.quick, "status": result.status, "seconds": result.seconds})
        for mutant in MUTANTS:
            result = run_proof(mutant.proof, work)
            failed = failed_sources(result)
            expected = result.status in ("FAIL", "UNKNOWN") and any(mutant.fails in line for line in failed)
            print(f"{mutant.name}: {result.status} ({'as expected' if expected else 'NOT AS EXPECTED'})", flush=True)
            ok &= expected
            results["mutants"].append({"name": mutant.name, "defect": mutant.defect, "proof": mutant.proof.name,
                                       "status": result.status, "seconds": result.seconds,
                                       "failed": [mutant.fails] if expected else failed})
    write("formal", results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
