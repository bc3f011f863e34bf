"""docs/protocol.md against layout/protocol.py: the document's numbers cannot drift silently."""

import re
import struct
from pathlib import Path

import pytest

import layout.protocol as protocol
from layout.protocol import (COUNTERS, IDENTITY_FIELDS, MODEL_ID_BYTES, Command, LoadTarget, Status, crc16,
                             encode_frame, link_bound_fps)
from model.bits import pack_bits

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


@pytest.fixture(scope="module")
def text():
    return DOC.read_text(encoding="utf-8")


def _cell(cell):
    return cell.strip().strip("`").strip()


def _tables(text):
    """Every markdown table: (header cells, [row cells]), cells stripped of spaces and backticks."""
    tables, current = [], None
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [_cell(c) for c in line.strip().strip("|").split("|")]
            if current is None:
                current = (cells, [])
            elif not all(set(c) <= set("-: ") for c in cells):
                current[1].append(cells)
        elif current is not None:
            tables.append(current)
            current = None
    return tables


def _table(text, *columns):
    """The rows, as dicts, of the one table whose header has all of ``columns``."""
    found = [(h, rows) for h, rows in _tables(text) if all(c in h for c in columns)]
    assert len(found) == 1, f"expected one table with columns {columns}, found {len(found)}"
    header, rows = found[0]
    return [dict(zip(header, row)) for row in rows]


def _int(cell):
    return int(cell, 0)


def test_crc_check_value(text):
    match = re.search(r'crc16\(b"123456789"\) == (0x[0-9A-Fa-f]+)', text)
    assert match and crc16(b"123456789") == int(match.group(1), 16)
    match = re.search(r"`crc16\(([0-9a-f ]+)\) = (0x[0-9A-Fa-f]+)`", text)
    assert match and crc16(bytes.fromhex(match.group(1))) == int(match.group(2), 16)


def test_constants(text):
    rows = _table(text, "name", "value", "meaning")
    assert {r["name"] for r in rows} >= {"SYNC", "MAX_INFER_FRAMES", "MAX_LOAD_DATA", "FRAMES_IN_FLIGHT"}
    for row in rows:
        assert _int(row["value"]) == getattr(protocol, row["name"]), row["name"]


@pytest.mark.parametrize("enum, name_column, value_column, other_column", [
    (Command, "command", "code", "request payload"),
    (Status, "status", "code", "sent when"),
    (LoadTarget, "target", "value", "content"),
])
def test_code_tables(text, enum, name_column, value_column, other_column):
    rows = _table(text, name_column, value_column, other_column)
    assert {r[name_column]: _int(r[value_column]) for r in rows} == {m.name: m.value for m in enum}


def test_identity_table(text):
    rows = _table(text, "offset", "size", "format", "field")
    expected, offset = [], 0
    for name, fmt in IDENTITY_FIELDS:
        size = struct.calcsize("<" + fmt)
        expected.append((offset, size, fmt, name))
        offset += size
    for target in LoadTarget:
        expected.append((offset, 6, "IH", target.name))
        offset += 6
    expected += [(offset, 1, "B", "model_loaded"), (offset + 1, MODEL_ID_BYTES, f"{MODEL_ID_BYTES}s", "model_id")]
    total = offset + 1 + MODEL_ID_BYTES
    assert [(_int(r["offset"]), _int(r["size"]), r["format"], r["field"]) for r in rows] == expected
    assert f"{total} bytes" in text
    # the size Identity.decode insists on
    with pytest.raises(ValueError, match=f"an identity is {total} bytes"):
        protocol.Identity.decode(bytes(total + 1))


def test_counters_table(text):
    rows = _table(text, "offset", "size", "counter")
    expected, offset = [], 0
    for name, size in COUNTERS:
        expected.append((offset, size, name))
        offset += size
    assert [(_int(r["offset"]), _int(r["size"]), r["counter"]) for r in rows] == expected
    assert f"{offset} bytes" in text


def test_worked_example(text):
    rows = _table(text, "direction", "code", "seq", "payload (hex)", "frame (hex)")
    assert {r["code"] for r in rows} >= {"IDENTIFY", "INFER"}
    for row in rows:
        code = (Command if row["direction"] == "request" else Status)[row["code"]]
        frame = encode_frame(code, int(row["seq"]), bytes.fromhex(row["payload (hex)"]))
        assert frame == bytes.fromhex(row["frame (hex)"]), row


def test_one_bit_frame_example(text):
    match = re.search(r"bits `([01 ]+)`: bytes `([0-9a-f ]+)`", text)
    bits = [int(b) for b in match.group(1).split()]
    assert pack_bits(bits).tobytes() == bytes.fromhex(match.group(2))


def test_throughput_example(text):
    match = re.search(r"F` = (\d+)\): ([\d,]+) frames/s at `n` = (\d+), ([\d,]+) at `n` = (\d+)", text)
    size = int(match.group(1))
    for fps, n in [(match.group(2), match.group(3)), (match.group(4), match.group(5))]:
        assert round(link_bound_fps(3_000_000, size, int(n))) == int(fps.replace(",", ""))


def test_watchdog_formula_is_the_code(text):
    """The watchdog's block, evaluated as written, against layout.protocol.watchdog_cycles."""
    import random
    from types import SimpleNamespace
    block = re.search(r"### The engine's watchdog.*?```python\n(.*?)```", text, re.DOTALL).group(1)
    rng = random.Random(1)
    for _ in range(200):
        fields = {"input_words": rng.randint(1, 300), "act_words": rng.randint(1, 300), "simd": 1 << rng.randint(0, 7),
                  "max_layers": rng.randint(1, 16), "tree_stages": rng.randint(0, 6), "conv": rng.randint(0, 1)}
        depth = rng.randint(1, 5000)
        scope = {**fields, "WEIGHTS": SimpleNamespace(depth=depth)}
        exec(block, scope)
        assert scope["watchdog_cycles"] == protocol.watchdog_cycles(weight_depth=depth, **fields)


def _row_fields(text):
    """``{"descriptor": [(field, width expression, condition)], "network": [...]}`` from the row table."""
    rows = {"descriptor": [], "network": []}
    for r in _table(text, "row", "field", "width"):
        kind, _, condition = r["row"].partition(" (")
        names = [n.strip().strip("`") for n in r["field"].split(",")]
        width = r["width"].removesuffix(" each").strip("`")
        rows[kind].extend((name, width, condition.rstrip(")").replace("`", "")) for name in names)
    return rows


def _flat_fields(layout):
    """``[(name, width)]`` of a StructLayout's fields, nested structs flattened in place."""
    from amaranth.hdl import Shape
    from amaranth.lib import data
    fields = []
    for name, field in layout:
        if isinstance(field.shape, data.StructLayout):
            fields += _flat_fields(field.shape)
        else:
            fields.append((name, Shape.cast(field.shape).width))
    return fields


@pytest.mark.parametrize("seed", range(6))
def test_the_row_table_is_the_rows_layouts(text, seed):
    from layout.compiler import compile_model
    from layout.rows import descriptor_layout, network_layout
    from model.layers import Conv, Dense, MaxPool
    from model.modelfile import MaxPoolLayer
    from model.random_models import random_conv_model, random_model
    if seed % 2:
        model = random_conv_model((7, 6, 2), [Conv(3, 3), MaxPool(), Dense(5), Dense(3)], input_bits=8, seed=seed)
    else:
        model = random_model([30 + seed, 9, 4], input_bits=1 if seed % 4 else 8, seed=seed)
    params = compile_model(model, pe=2, simd=[4, 8, 16][seed % 3]).params
    words = max(params.input_words, params.act_words)
    scope = {**{f: getattr(params, f) for f in ("input_words", "act_words", "simd", "pixels_per_beat", "score_count",
                                                "input_bits", "gather_rows")},
             "bits": lambda n: max(1, (n - 1).bit_length()), "words": words, "elements": words * params.simd,
             "starts": params.start_depth, "frame_bytes": protocol.frame_bytes}
    table = _row_fields(text)
    expected = {"descriptor": _flat_fields(descriptor_layout(params)), "network": _flat_fields(network_layout(params))}
    for kind, fields in table.items():
        documented = [(name, eval(width, scope)) for name, width, condition in fields
                      if not condition or (params.conv and (condition == "conv" or
                                                            (condition == "conv, gather_rows > 1" and
                                                             params.gather_rows > 1)))]
        assert documented == expected[kind], kind
    if seed == 3:
        assert params.conv and params.gather_rows > 1      # the gather fields are covered
    # the values the table gives, for the fully connected layers of a fully connected engine and the network row
    from layout.images import memory_images
    from layout.protocol import LoadTarget
    compiled = compile_model(model, pe=2, simd=params.simd)
    images = memory_images(compiled)
    layers = [layer for layer in model.layers if not isinstance(layer, MaxPoolLayer)]
    if not params.conv:
        for k, (layer, row) in enumerate(zip(layers, images[LoadTarget.DESCRIPTORS])):
            d = descriptor_layout(params).from_bits(row)
            assert (d.last_slice, d.last_group, d.bit_serial, d.first, d.last) == (
                -(-layer.fan_in // params.simd) - 1, -(-layer.fan_out // 2) - 1,
                int(k == 0 and model.input.bits == 8), int(k == 0), int(k == len(layers) - 1))
    n = network_layout(params).from_bits(images[LoadTarget.NETWORK][0])
    beats, granules = -(-model.input.size // params.pixels_per_beat), params.simd // params.pixels_per_beat
    assert (n.input.last_word, n.input.last_granule, n.input.last_lanes, n.input.threshold, n.classes,
            n.frame_bytes) == ((beats - 1) // granules, (beats - 1) % granules,
                               model.input.size - (beats - 1) * params.pixels_per_beat, model.input.threshold or 0,
                               model.classes, protocol.frame_bytes(model.input.bits, model.input.size))
