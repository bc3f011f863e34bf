"""The figures of README.md and docs/results.md are the committed bench results, so that a stale
figure fails here.

Each bench that records its results in ``bench/out/<name>.json`` prints its table (or paragraph)
from them with ``--markdown``: the document that shows it (README.md for the board table,
docs/results.md for the rest) must hold that text word for word. Figures either document quotes in
its prose are checked against the same files.
"""

import importlib
import os
from pathlib import Path

import pytest

from bench import cnn_vs_mlp, results
from layout.protocol import frame_bytes, link_bound_fps

ROOT = Path(__file__).parents[1]
README, RESULTS = "README.md", "docs/results.md"
DOCUMENTS = {name: (ROOT / name).read_text() for name in (README, RESULTS)}

# each bench, and the document that holds what its --markdown prints
BENCHES = [("boards", README), ("netlists", RESULTS), ("formal", RESULTS), ("link", RESULTS),
           ("sfc_spram", RESULTS), ("engine_utilisation", RESULTS), ("sim_speed", RESULTS),
           ("qonnx_roundtrip", RESULTS), ("import_brevitas", RESULTS),
           pytest.param("train_accuracy", RESULTS, marks=pytest.mark.skipif(
               not os.path.exists(results.path("train_accuracy")),
               reason="bench/out/train_accuracy.json is not committed yet"))]


@pytest.mark.parametrize("name, document", BENCHES)
def test_the_documents_hold_what_the_bench_prints_from_its_committed_results(name, document):
    markdown = importlib.import_module(f"bench.{name}").markdown(results.read(name))
    assert markdown in DOCUMENTS[document], \
        f"{document} does not hold what bench/{name}.py --markdown prints:\n{markdown}"


def test_the_results_hold_the_mlp_against_cnn_table_from_the_committed_results():
    markdown = cnn_vs_mlp.recorded_markdown()
    assert markdown in DOCUMENTS[RESULTS], f"{RESULTS} does not hold what bench/cnn_vs_mlp.py prints:\n{markdown}"


def _words(text):
    return " ".join(text.split())


def test_figures_in_the_documents_prose_are_the_committed_results():
    throughput = {r["frames_per_request"]: r for r in results.read("link")["throughput"]["runs"]}
    fast = results.read("link")["throughput_fast"]
    boards = {r["row"]: r for r in results.read("boards")["rows"]}
    sfc_board, sfc_line = boards["icebreaker-sfc"], results.read("sfc_spram")
    netlists = {r["row"]: r for r in results.read("netlists")["rows"]}
    quoted = [  # (the document that quotes it, the quote)
        (README, f"the same run reaches {100 * throughput[1]['fraction_of_bound']:.1f}% of the line's bound"),
        (README, f"runs on an iCEBreaker at {sfc_board['pe']} x {sfc_board['simd']} "
                 f"({sfc_board['frames_per_second']:,.0f} frames/s at {sfc_board['clock_mhz']:.0f} MHz; at 3 Mbaud "
                 f"the line carries {sfc_line['link_bound_frames_per_second']:,.0f} of its {frame_bytes(1, 784)}-byte "
                 f"frames per second)"),
        (RESULTS, f"8 x 32 on ECP5 {boards['ulx3s-85f']['engine_resources']['luts']:,} LUT4s"),
        (RESULTS, f"16 x 64 {boards['ulx3s-85f-16x64']['engine_resources']['luts']:,} instead of"),
        (RESULTS, f"{boards['ulx3s-85f-16x64']['lanes_per_lut']:.3f} lanes per LUT4"),
        (RESULTS, f"a 3 Mbaud line carries at most {link_bound_fps(3_000_000, frame_bytes(8, 784), 1):,.0f} "
                  f"frames per second"),
        (RESULTS, _netlist_speed_phrase(netlists.values())),
        (RESULTS, f"the engine ({fast['cycles_per_frame']:,} cycles a frame at {fast['clock_hz'] / 1e6:.0f} MHz) "
                  f"still keeps up, and the run reaches {100 * fast['runs'][0]['fraction_of_bound']:.1f}%"),
    ]
    assert [(document, q) for document, q in quoted if _words(q) not in _words(DOCUMENTS[document])] == []


def _netlist_speed_phrase(rows):
    """How docs/results.md says the netlists' speed against the target (1/20 of the RTL's) came out."""
    rows = sorted(rows, key=lambda r: r["speed_ratio"])
    missed = [r for r in rows if r["speed_ratio"] < 1 / 20]
    if missed:
        return "missed on " + ", ".join(f"{r['row']} ({r['speed_ratio']:.3f})" for r in missed)
    return (f"met on every row, from {rows[0]['speed_ratio']:.3f} ({rows[0]['row']}) to "
            f"{rows[-1]['speed_ratio']:.3f} ({rows[-1]['row']})")
