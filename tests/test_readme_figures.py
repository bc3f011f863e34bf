"""The README's figures are the committed bench results, so that a stale figure fails here.

Each bench that records its results in ``bench/out/<name>.json`` prints its README table (or
paragraph) from them with ``--markdown``: the README must hold that text word for word. Figures the
README quotes in its prose are checked against the same files.
"""

import importlib
import os
from pathlib import Path

import pytest

from bench import cnn_vs_mlp, results
from layout.protocol import frame_bytes, link_bound_fps

README = (Path(__file__).parents[1] / "README.md").read_text()

BENCHES = ["boards", "netlists", "formal", "link", "sfc_spram", "engine_utilisation", "sim_speed",
           pytest.param("train_accuracy", marks=pytest.mark.skipif(
               not os.path.exists(results.path("train_accuracy")),
               reason="bench/out/train_accuracy.json is not committed yet"))]


@pytest.mark.parametrize("name", BENCHES)
def test_the_readme_holds_what_the_bench_prints_from_its_committed_results(name):
    markdown = importlib.import_module(f"bench.{name}").markdown(results.read(name))
    assert markdown in README, f"README.md does not hold what bench/{name}.py --markdown prints:\n{markdown}"


def test_the_readme_holds_the_mlp_against_cnn_table_from_the_committed_results():
    markdown = cnn_vs_mlp.recorded_markdown()
    assert markdown in README, f"README.md does not hold what bench/cnn_vs_mlp.py prints:\n{markdown}"


def _words(text):
    return " ".join(text.split())


def test_figures_in_the_readme_s_prose_are_the_committed_results():
    throughput = {r["frames_per_request"]: r for r in results.read("link")["throughput"]["runs"]}
    fast = results.read("link")["throughput_fast"]
    boards = {r["row"]: r for r in results.read("boards")["rows"]}
    sfc_board, sfc_line = boards["icebreaker-sfc"], results.read("sfc_spram")
    netlists = {r["row"]: r for r in results.read("netlists")["rows"]}
    quoted = [
        f"the same run reaches {100 * throughput[1]['fraction_of_bound']:.1f}% of the line's bound",
        f"runs on an iCEBreaker at {sfc_board['pe']} x {sfc_board['simd']} ({sfc_board['frames_per_second']:,.0f} "
        f"frames/s at {sfc_board['clock_mhz']:.0f} MHz; at 3 Mbaud the line carries "
        f"{sfc_line['link_bound_frames_per_second']:,.0f} of its {frame_bytes(1, 784)}-byte frames per second)",
        f"8 x 32 on ECP5 {boards['ulx3s-85f']['engine_resources']['luts']:,} LUT4s",
        f"16 x 64 {boards['ulx3s-85f-16x64']['engine_resources']['luts']:,} instead of",
        f"{boards['ulx3s-85f-16x64']['lanes_per_lut']:.3f} lanes per LUT4",
        f"a 3 Mbaud line carries at most {link_bound_fps(3_000_000, frame_bytes(8, 784), 1):,.0f} frames per second",
        *[f"{'met' if r['speed_ratio'] >= 1 / 20 else 'missed'} on the {name}, {r['speed_ratio']:.3f}"
          for name, r in [("iCEBreaker", netlists["icebreaker"]), ("ULX3S", netlists["ulx3s-85f"])]],
        f"the engine ({fast['cycles_per_frame']:,} cycles a frame at {fast['clock_hz'] / 1e6:.0f} MHz) still keeps up, "
        f"and the run reaches {100 * fast['runs'][0]['fraction_of_bound']:.1f}%",
    ]
    assert [q for q in quoted if _words(q) not in _words(README)] == []
