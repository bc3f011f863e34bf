"""The bit layouts of the engine's table rows, and the integers a memory of them stores.

A loadable memory of ``width``-bit words is built ``byte_lanes(width) * 8`` bits wide; byte ``j``
of a word (little-endian, as the link carries it, :class:`layout.protocol.LoadTarget`) is written
through byte lane ``j`` (:mod:`hw.loadable`). Rows of structured tables (the descriptor table, the
network row) are stored as the integer value of their layout (:func:`row_value`).
"""

from amaranth.lib import data

from .params import MAX_LANES
from .protocol import LoadTarget, frame_bytes, word_bytes


def byte_lanes(width):
    """Byte lanes of a loadable word of ``width`` bits."""
    if not 0 < width <= MAX_LANES:
        raise ValueError(f"a loadable word is 1..{MAX_LANES} bits, not {width!r}")
    return word_bytes(width)


def row_value(layout, values):
    """The integer a memory of ``layout``-shaped rows stores for the row ``values`` (a dict)."""
    return layout.const(values).as_value().value


def index_shape(count):
    """Shape of an index into ``count`` things (at least one bit)."""
    return range(max(count, 2))


def map_elements(params):
    """Elements (lanes) of the largest map a ``conv`` engine holds: its offsets' range."""
    return max(params.input_words, params.act_words) * params.simd


def descriptor_layout(params):
    """Row layout of the descriptor table (see :class:`layout.params.LayerDescriptor`): the last
    slice and group index (compared for equality, no subtraction on the sequencer's paths).
    A ``conv`` engine's rows add the window walk (:class:`layout.params.Window`): the last window
    row, column and line, the pool flag, the valid lanes of a row's last slice, and the steps
    between the offsets of channels, pixels, window rows and lines; with ``gather_rows`` > 1 also
    the slice walk's steps, ``pos_back`` = ``row_lanes - pos_step``, and the pieces' ``skip``."""
    fields = {
        "last_slice": index_shape(max(params.input_words, params.act_words)),
        "last_group": index_shape(params.start_depth),
        "bit_serial": 1,
        "first": 1,
        "last": 1,
    }
    if params.conv:
        elements = range(map_elements(params) + 1)
        fields.update(last_row=elements, last_col=elements, last_line=elements, pool=1,
                      lanes=range(params.simd + 1), channels=elements, pixel_step=elements,
                      row_step=elements, line_step=elements)
        if params.gather_rows > 1:
            fields.update(step=elements, wrap_step=elements, pos_step=elements, pos_back=elements,
                          row_lanes=elements, skip=elements)
    return data.StructLayout(fields)


def descriptor_rows(params, descriptors):
    """The table's rows for ``descriptors``, as the integers the table stores (see
    :mod:`hw.loadable`)."""
    layout = descriptor_layout(params)
    rows = []
    for k, d in enumerate(descriptors):
        values = {"last_slice": d.slices - 1, "last_group": d.groups - 1,
                  "bit_serial": int(d.bit_serial), "first": int(k == 0), "last": int(d.last)}
        if params.conv:
            w = d.window
            values.update(last_row=d.rows - 1, last_col=w.cols - 1, last_line=w.lines - 1, pool=int(w.pool),
                          lanes=w.lanes, channels=w.channels, pixel_step=w.pixel_step,
                          row_step=w.row_step, line_step=w.line_step)
            if params.gather_rows > 1:
                values.update(step=w.step, wrap_step=w.wrap_step, pos_step=w.pos_step,
                              pos_back=w.row_lanes - w.pos_step, row_lanes=w.row_lanes, skip=w.skip)
        rows.append(row_value(layout, values))
    return rows


def input_config_layout(params):
    """Where a frame ends, and the 1-bit threshold: the network-specific part of the loader.

    ``last_word``/``last_granule`` locate the frame's last beat, ``last_lanes`` is how many of its
    K pixels belong to the frame, ``threshold`` binarizes pixels of a 1-bit model.
    """
    return data.StructLayout({
        "last_word": index_shape(params.input_words),
        "last_granule": index_shape(params.simd // params.pixels_per_beat),
        "last_lanes": range(params.pixels_per_beat + 1),
        "threshold": range(257),
    })


def input_config(params, image):
    """The :func:`input_config_layout` values of ``image`` (a :class:`layout.compiler.NetworkImage`)."""
    granules = params.simd // params.pixels_per_beat
    beats = -(-image.input_size // params.pixels_per_beat)
    return {"last_word": (beats - 1) // granules, "last_granule": (beats - 1) % granules,
            "last_lanes": image.input_size - (beats - 1) * params.pixels_per_beat,
            "threshold": image.input_threshold}


def network_layout(params):
    """The network's numbers outside the descriptor table: where an input frame ends, the 1-bit
    input threshold, the number of classes, and the bytes of a frame on the link
    (:func:`layout.protocol.frame_bytes`)."""
    most_bytes = frame_bytes(params.input_bits, params.input_words * params.simd)
    return data.StructLayout({"input": input_config_layout(params), "classes": range(params.score_count + 1),
                              "frame_bytes": range(most_bytes + 1)})


def network_row(params, image):
    """The network row of ``image`` (a :class:`layout.compiler.NetworkImage`), as the integer stored."""
    return row_value(network_layout(params), {
        "input": input_config(params, image), "classes": image.classes,
        "frame_bytes": frame_bytes(params.input_bits, image.input_size)})


def loadable_widths(params):
    """``{LoadTarget: width}``: the bits of one word of each memory the engine loads."""
    return {LoadTarget.WEIGHTS: params.pe * params.simd, LoadTarget.STARTS: params.pe * params.start_width,
            LoadTarget.DESCRIPTORS: descriptor_layout(params).size, LoadTarget.NETWORK: network_layout(params).size}
