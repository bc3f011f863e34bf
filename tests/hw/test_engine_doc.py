"""docs/engine.md's cycle formulas, as written, against the cycles measured on random models; the same
random models (memories one word deep among them) give the golden model's classes and scores under
back-pressure.

The formulas are the document's Python block, evaluated as they stand; the names they use are
computed here from the model and the engine's parameters by the document's table, not taken from
the compiler, so that the document and the engine cannot drift apart silently.
"""

import math
import re
from pathlib import Path

import numpy as np
import pytest

from layout.compiler import compile_model
from model.layers import Conv, Dense, MaxPool
from model.modelfile import ConvLayer, MaxPoolLayer
from model.random_models import random_conv_model, random_images, random_model

DOC = Path(__file__).resolve().parents[2] / "docs" / "engine.md"
DRAWS = 36          # random models per test: a third of them with one-word input and activation memories


def doc_formulas():
    """The Python block of docs/engine.md's "Pipeline and the cycle formula" section."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Pipeline and the cycle formula", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 1, "expected one python block in the cycle formula section"
    return blocks[0]


def evaluate_doc(names):
    """Run the document's block with ``names``; return every name it defines."""
    scope = {"ceil": math.ceil, "ceil_log2": lambda n: (n - 1).bit_length(), **names}
    exec(doc_formulas(), scope)
    return scope


def _slice_rows(kernel, row, simd):
    """The most window rows one S-lane slice touches when the window's rows of ``row`` values are
    sliced as one sequence (docs/engine.md, "Slices across window rows")."""
    total = kernel * row
    return max(len({e // row for e in range(start, min(start + simd, total))}) for start in range(0, total, simd))


def doc_names(model, params):
    """The names of docs/engine.md's table, for ``model`` on an engine of ``params``."""
    P, S, G = params.pe, params.simd, params.gather_rows
    stored = lambda channels: P * -(-channels // P)    # a map a convolution wrote: channels padded to P
    positions, groups, words, planes = [], [], [], []
    feeding = None     # the map feeding the next layer: (H, W, C as stored)
    for k, layer in enumerate(model.layers):
        if isinstance(layer, MaxPoolLayer):
            h, w, c = feeding
            feeding = (h // 2, w // 2, c)
            continue
        planes.append(8 if k == 0 and model.input.bits == 8 else 1)
        outputs = layer.weights_shape[0]
        groups.append(-(-outputs // P))
        if isinstance(layer, ConvLayer):
            h, w, c = layer.in_shape if k == 0 else feeding
            K = layer.kernel
            ho, wo = h - K + 1, w - K + 1
            pooled = k + 1 < len(model.layers) and isinstance(model.layers[k + 1], MaxPoolLayer)
            positions.append(4 * (ho // 2) * (wo // 2) if pooled else ho * wo)
            spanning, by_row = -(-K * K * c // S), K * -(-K * c // S)
            words.append(spanning if spanning < by_row and _slice_rows(K, K * c, S) <= G else by_row)
            feeding = (ho, wo, stored(outputs))
        else:
            fan_in = layer.fan_in if feeding is None else math.prod(feeding)
            positions.append(1)
            words.append(-(-fan_in // S))
            feeding = None
    return {"P": P, "S": S, "D": params.tree_stages, "pixels_per_beat": params.pixels_per_beat,
            "conv": int(params.conv), "layers": len(groups), "positions": positions, "groups": groups,
            "words": words, "planes": planes, "planes0": 8 if model.input.bits == 8 else 1,
            "score_count": params.score_count, "input_size": model.input.size}


def _dense_case(rng, one_word):
    layers = int(rng.integers(1, 4))
    sizes = [int(rng.integers(1, 41)), *rng.integers(1, 21, layers - 1).tolist(), int(rng.integers(2, 13))]
    pe = int(rng.integers(1, 5))
    simd = pe * int(rng.integers(1, 5))
    if one_word:     # every input and activation vector in one word
        simd = pe * -(-max(sizes[:-1]) // pe)
    model = random_model(sizes, input_bits=int(rng.choice([1, 8])), seed=int(rng.integers(1 << 30)),
                         input_threshold=int(rng.integers(0, 257)))
    return model, pe, simd


def _conv_case(rng, one_word):
    h, w, c = (int(v) for v in [*rng.integers(1, 8, 2), rng.integers(1, 4)])
    shape, specs, pe = (h, w, c), [], int(rng.choice([1, 2, 4]))
    sizes = [h * w * c]          # input and every stored map, in values
    for _ in range(int(rng.integers(1, 3))):
        kernel = int(rng.integers(1, min(3, h, w) + 1))
        channels = int(rng.integers(1, 7))
        specs.append(Conv(channels, kernel))
        h, w = h - kernel + 1, w - kernel + 1
        if h >= 2 and w >= 2 and rng.random() < 0.4:
            specs.append(MaxPool())
            h, w = h // 2, w // 2
        sizes.append(h * w * pe * -(-channels // pe))
        if rng.random() < 0.5:
            break
    if rng.random() < 0.5:
        units = int(rng.integers(1, 13))
        specs.append(Dense(units))
        sizes.append(units)
    specs.append(Dense(int(rng.integers(2, 7))))
    simd = pe << int(rng.integers(0, 4))
    if one_word:     # the image and every map in one word
        simd = max(pe, 1 << (max(sizes) - 1).bit_length())
    model = random_conv_model(shape if c > 1 or rng.random() < 0.5 else shape[:2], specs,
                              input_bits=int(rng.choice([1, 8])), seed=int(rng.integers(1 << 30)),
                              input_threshold=int(rng.integers(0, 257)))
    return model, pe, simd


def random_cases(seed):
    """``DRAWS`` random ``(model, pe, simd, tree_stages)``, alternately fully connected and
    convolutional; every third one's input and activation memories are one word deep."""
    rng = np.random.default_rng(seed)
    cases = []
    for n in range(DRAWS):
        one_word = n % 3 == 2
        model, pe, simd = (_conv_case if n % 2 else _dense_case)(rng, one_word)
        cases.append((model, pe, simd, int(rng.integers(0, 3)), one_word))
    return cases


def _one_word(compiled):
    return compiled.params.input_words == 1 and compiled.params.act_words == 1


def test_the_draws_include_one_word_memories_of_both_kinds():
    compiled = [compile_model(m, pe=p, simd=s, tree_stages=d) for m, p, s, d, _ in random_cases(1)]
    assert all(_one_word(c) for c, (*_, one_word) in zip(compiled, random_cases(1)) if one_word)
    assert {c.params.conv for c in compiled if _one_word(c)} == {False, True}


def test_the_table_defines_every_name_the_block_reads():
    section = DOC.read_text(encoding="utf-8").split("## Pipeline and the cycle formula", 1)[1].split("\n## ", 1)[0]
    table = set(re.findall(r"^\| `(\w+)(?:\[l\]|\(n\))?` \|", section, re.MULTILINE))
    model, pe, simd, stages, _ = random_cases(2)[1]
    names = doc_names(model, compile_model(model, pe=pe, simd=simd, tree_stages=stages).params)
    # P, S and D are named in the sentence above the table
    assert table | {"P", "S", "D"} == set(names) | {"ceil_log2"}


def test_the_document_names_every_figure_the_code_computes():
    # the block's figures and the compiler's for the same model: the document is complete
    for model, pe, simd, stages, _ in random_cases(2)[:12]:
        compiled = compile_model(model, pe=pe, simd=simd, tree_stages=stages)
        doc = evaluate_doc(doc_names(model, compiled.params))
        assert (doc["cycles_per_frame"], doc["latency"], doc["load_cycles"], doc["gap"]) == (
            compiled.cycles_per_frame, compiled.latency, compiled.load_cycles, compiled.params.layer_gap), model.arch


@pytest.mark.parametrize("seed", [3])
def test_documented_cycles_equal_the_measured_ones(engine_run, seed):
    for model, pe, simd, stages, _ in random_cases(seed):
        run = engine_run(model, random_images(3, model.input.size, seed=seed), pe=pe, simd=simd, tree_stages=stages)
        doc = evaluate_doc(doc_names(model, run.compiled.params))
        where = f"{model.arch} {model.input.bits}-bit at {pe} x {simd}, D = {stages}"
        assert run.mismatches == 0, where
        assert run.latency == doc["latency"], where
        if doc["load_cycles"] <= doc["cycles_per_frame"]:     # the document's domain: the loader keeps up
            assert run.intervals == [doc["cycles_per_frame"]] * 2, where


def test_random_models_are_exact_under_back_pressure(engine_run):
    for model, pe, simd, stages, _ in random_cases(4):
        run = engine_run(model, random_images(4, model.input.size, seed=5), pe=pe, simd=simd, tree_stages=stages,
                         seed=6, input_gaps=0.3, output_stalls=0.4)
        assert run.mismatched_frames == [], f"{model.arch} {model.input.bits}-bit at {pe} x {simd}, D = {stages}"
