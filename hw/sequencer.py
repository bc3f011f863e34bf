"""The layer sequencer: walks the descriptor table and issues one PE-array command per cycle."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from layout.params import PLANES
from layout.protocol import LoadTarget
from layout.rows import byte_lanes, descriptor_layout, descriptor_rows, index_shape, map_elements

from .loadable import drive_write_port, load_signature


def command_layout(params):
    """One cycle's work for the PE array, and where its results go.

    ``first``/``last`` mark a neuron group's first and last operation; ``plane`` is the bit plane
    (0 in an XNOR layer) and ``shift`` what the PEs shift the count by (the plane in a bit-serial
    layer, 1 in an XNOR layer); ``slice`` indexes the input word; ``parity`` is the layer number's low
    bit (layer ``k`` writes activation bank ``k % 2`` and reads bank ``(k - 1) % 2``);
    ``out_word``/``out_chunk`` locate the group's P output bits in the written bank.

    A ``conv`` engine's commands read at element ``offset`` of the input or activation map
    instead of word ``slice``, ``lanes`` of them valid; ``sub_first`` marks a pool window's
    first pixel and ``write`` its last (both 1 without pool): the group's bits are written then.
    With ``gather_rows`` G > 1, piece ``q`` (1..G-1) of the slice reads at element
    ``pieces[q - 1]`` and fills lanes ``bounds[q - 1]`` (to the next piece's bound, or S) on;
    piece 0 fills the lanes below ``bounds[0]`` (docs/engine.md, "Window gather"). The bounds are
    not clipped to S.
    """
    fields = {
        "valid": 1,
        "first": 1,
        "last": 1,
        "plane": range(PLANES),
        "shift": range(PLANES),
        "from_input": 1,
        "parity": 1,
        "slice": index_shape(max(params.input_words, params.act_words)),
        "weight_addr": index_shape(params.weight_depth),
        "start_addr": index_shape(params.start_depth),
        "group": index_shape(params.start_depth),
        "out_word": index_shape(params.act_words),
        "out_chunk": index_shape(params.simd // params.pe),
        "last_layer": 1,
        "frame_end": 1,
    }
    if params.conv:
        del fields["slice"]
        fields.update(offset=index_shape(map_elements(params)), lanes=range(params.simd + 1), sub_first=1, write=1)
        if params.gather_rows > 1:
            fields.update(pieces=data.ArrayLayout(index_shape(map_elements(params)), params.gather_rows - 1),
                          bounds=data.ArrayLayout(range(params.gather_rows * map_elements(params) + 1),
                                                  params.gather_rows - 1))
    return data.StructLayout(fields)


class Sequencer(wiring.Component):
    """Issues, for each layer, for each group of P neurons, for each S-bit input slice (and for
    each of the 8 bit planes in the 8-bit first layer) one command per cycle, without bubbles.

    After a layer's last command it idles ``params.layer_gap`` cycles, so that the layer's last
    activation bits are written before the next layer reads them. Layer 0 of a frame starts when
    ``frame_ready``; the output layer starts when ``scores_free``. After the output layer the
    walk restarts at layer 0 with the next frame. Weight and start-value addresses simply count
    up through a frame: the compiler lays the images out in exactly this order. Every decision
    comes from registers (the current and next descriptor rows, "last slice/group" flags kept
    with the counters), so that the paths from the sequencer's state to its next state are short.

    Members
    -------
    frame_ready : In(1)
        An input frame is loaded.
    scores_free : In(1)
        The score registers may be overwritten.
    frame_taken : Out(1)
        Pulses the cycle after layer 0's last command: the input bank may be refilled (a
        register, to keep the loader off the sequencer's paths).
    command : Out(command_layout(params))
    load : In(hw.loadable.load_signature()), if ``loadable``
        Writes to the descriptor table (:attr:`layout.protocol.LoadTarget.DESCRIPTORS`); the
        sequencer must be reset after a load, and idle during it.

    After reset, the sequencer spends two cycles reading the table's first rows before it
    may issue.
    """

    def __init__(self, params, descriptors, *, loadable=False):
        if not 1 <= len(descriptors) <= params.max_layers:
            raise ValueError(f"{len(descriptors)} descriptors do not fit a table of {params.max_layers}")
        self._params = params
        self._descriptors = tuple(descriptors)
        self._loadable = loadable
        members = {
            "frame_ready": In(1),
            "scores_free": In(1),
            "frame_taken": Out(1),
            "command": Out(command_layout(params)),
        }
        if loadable:
            members["load"] = In(load_signature())
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        params = self._params
        layout = descriptor_layout(params)
        # A handful of rows read combinationally: flip-flops and LUTs, not block RAM.
        m.submodules.table = table = Memory(shape=byte_lanes(layout.size) * 8, depth=params.max_layers,
                                            init=descriptor_rows(params, self._descriptors))
        lookup = table.read_port(domain="comb")
        if self._loadable:
            drive_write_port(m, table.write_port(granularity=8), self.load, LoadTarget.DESCRIPTORS)
        looked_up = layout(lookup.data[:layout.size])

        # The current layer's row, and the next layer's, held in registers: the table lookup is
        # off the paths from the counters to their next values. The next row is looked up every
        # cycle from the current layer; a layer lasts long enough (its commands plus the gap)
        # for it to be ready before it is needed. After reset, row 0 is read on the first cycle
        # (`primed` low) and the next row on the second; the gap counter holds the start off
        # until then.
        primed = Signal()
        layer = Signal(index_shape(params.max_layers))
        row = Signal(layout)
        next_row = Signal(layout)
        m.d.comb += lookup.addr.eq(Mux(~primed | row.last, 0, layer + 1))
        m.d.sync += next_row.eq(looked_up)
        if params.conv:
            self._walk_windows(m, primed, layer, row, next_row, looked_up)
            return m

        group = Signal.like(self.command.group)
        slice_ = Signal.like(self.command.slice)
        plane = Signal(range(PLANES))
        weight_addr = Signal.like(self.command.weight_addr)
        start_addr = Signal.like(self.command.start_addr)
        out_word = Signal.like(self.command.out_word)
        out_chunk = Signal.like(self.command.out_chunk)
        active = Signal()
        gap = Signal(range(params.layer_gap + 1), init=2)
        # "this is the last slice / group of the layer", kept with the counters
        slice_last = Signal()
        group_last = Signal()
        with m.If(~primed):
            m.d.sync += [primed.eq(1), row.eq(looked_up),
                         slice_last.eq(looked_up.last_slice == 0), group_last.eq(looked_up.last_group == 0)]

        start = ~active & (gap == 0) & (~row.first | self.frame_ready) & (~row.last | self.scores_free)
        issue = active | start
        plane_last = ~row.bit_serial | (plane == PLANES - 1)
        op_last = plane_last & slice_last
        layer_end = op_last & group_last

        cmd = self.command
        self._drive_command(m, issue, row, layer, plane, weight_addr, start_addr, group, out_word, out_chunk,
                            layer_end)
        m.d.comb += [
            cmd.first.eq((slice_ == 0) & (plane == 0)),
            cmd.last.eq(op_last),
            cmd.slice.eq(slice_),
        ]

        with m.If(~active & (gap != 0)):
            m.d.sync += gap.eq(gap - 1)
        with m.If(issue):
            m.d.sync += [active.eq(1), plane.eq(Mux(plane_last, 0, plane + 1))]
            with m.If(plane_last):
                m.d.sync += [weight_addr.eq(weight_addr + 1),
                             slice_.eq(Mux(slice_last, 0, slice_ + 1)),
                             slice_last.eq(Mux(slice_last, row.last_slice == 0, slice_ + 1 == row.last_slice))]
            with m.If(op_last):
                m.d.sync += [start_addr.eq(start_addr + 1),
                             group.eq(Mux(group_last, 0, group + 1)),
                             group_last.eq(Mux(group_last, row.last_group == 0, group + 1 == row.last_group))]
                with m.If(out_chunk == params.simd // params.pe - 1):
                    m.d.sync += [out_chunk.eq(0), out_word.eq(out_word + 1)]
                with m.Else():
                    m.d.sync += out_chunk.eq(out_chunk + 1)
            with m.If(layer_end):
                m.d.sync += [active.eq(0), gap.eq(params.layer_gap), out_word.eq(0), out_chunk.eq(0),
                             layer.eq(Mux(row.last, 0, layer + 1)), row.eq(next_row),
                             slice_last.eq(next_row.last_slice == 0), group_last.eq(next_row.last_group == 0)]
                with m.If(row.last):
                    m.d.sync += [weight_addr.eq(0), start_addr.eq(0)]
        return m

    def _drive_command(self, m, issue, row, layer, plane, weight_addr, start_addr, group, out_word, out_chunk,
                       layer_end):
        """The command fields both walks drive alike (the others depend on the walk), and
        ``frame_taken``."""
        cmd = self.command
        m.d.comb += [
            cmd.valid.eq(issue),
            cmd.plane.eq(plane),
            cmd.shift.eq(Mux(row.bit_serial, plane, 1)),
            cmd.from_input.eq(row.first),
            cmd.parity.eq(layer[0]),
            cmd.weight_addr.eq(weight_addr),
            cmd.start_addr.eq(start_addr),
            cmd.group.eq(group),
            cmd.out_word.eq(out_word),
            cmd.out_chunk.eq(out_chunk),
            cmd.last_layer.eq(row.last),
            cmd.frame_end.eq(layer_end & row.last),
        ]
        m.d.sync += self.frame_taken.eq(issue & layer_end & row.first)

    def _walk_windows(self, m, primed, layer, row, next_row, looked_up):
        """A ``conv`` engine's walk (``docs/engine.md``, "Convolutions and max-pools"): per layer,
        lines, columns, groups, pool pixels, window rows, slices and planes, innermost last; the
        read offset is kept by adders from the row's steps."""
        params, cmd = self._params, self.command
        simd = params.simd
        offset = Signal.like(cmd.offset)
        pieces = [Signal.like(cmd.offset, name=f"piece_{q}") for q in range(1, params.gather_rows)]
        # with pos the place of the slice's first element in its window row: pos + pos_step - row_lanes,
        # at least 0 when the next slice starts in a later window row; and piece q's first lane, q * row_lanes - pos
        ahead = Signal(signed(len(cmd.offset) + 2))
        bounds = [Signal.like(cmd.bounds[0], name=f"bound_{q}") for q in range(1, params.gather_rows)]
        row_start = Signal.like(cmd.offset)      # the current window row's first element
        pixel = Signal.like(cmd.offset)          # the current position's (pool window's) corner
        line = Signal.like(cmd.offset)           # the current line's first position's corner
        slice_ = Signal.like(row.last_slice)
        window_row = Signal.like(row.last_row)
        sub = Signal(2)                          # pixel of the pool window: dy = sub[1], dx = sub[0]
        group = Signal.like(cmd.group)
        col = Signal.like(row.last_col)
        line_index = Signal.like(row.last_line)
        plane = Signal(range(PLANES))
        weight_addr = Signal.like(cmd.weight_addr)
        group_weights = Signal.like(cmd.weight_addr)     # the group's first weight word
        layer_weights = Signal.like(cmd.weight_addr)     # the layer's
        start_addr = Signal.like(cmd.start_addr)
        layer_starts = Signal.like(cmd.start_addr)
        out_word = Signal.like(cmd.out_word)
        out_chunk = Signal.like(cmd.out_chunk)
        active = Signal()
        gap = Signal(range(params.layer_gap + 1), init=2)
        row_due = Signal()

        start = ~active & (gap == 0) & (~row.first | self.frame_ready) & (~row.last | self.scores_free)
        issue = active | start
        plane_last = ~row.bit_serial | (plane == PLANES - 1)
        slice_last = slice_ == row.last_slice
        row_last = window_row == row.last_row
        sub_last = ~row.pool | (sub == 3)
        group_last = group == row.last_group
        col_last = col == row.last_col
        line_last = line_index == row.last_line
        window_end = plane_last & slice_last & row_last
        group_end = window_end & sub_last
        position_end = group_end & group_last
        line_end = position_end & col_last
        layer_end = line_end & line_last

        self._drive_command(m, issue, row, layer, plane, weight_addr, start_addr, group, out_word, out_chunk,
                            layer_end)
        m.d.comb += [
            cmd.first.eq((slice_ == 0) & (window_row == 0) & (plane == 0)),
            cmd.last.eq(window_end),
            cmd.offset.eq(offset),
            cmd.lanes.eq(Mux(slice_last, row.lanes, simd)),
            cmd.sub_first.eq(sub == 0),
            cmd.write.eq(sub_last),
        ]
        if pieces:
            m.d.comb += [*[cmd.pieces[q].eq(piece) for q, piece in enumerate(pieces)],
                         *[cmd.bounds[q].eq(bound) for q, bound in enumerate(bounds)]]
            wraps = ~ahead[-1]

            def stepped(element):
                """``element`` moved on to the next slice's: both sums computed, one taken, so that
                no carry chain feeds another's select."""
                return Mux(wraps, element + row.wrap_step, element + row.step)

            next_slice = [ahead.eq(Mux(wraps, ahead - row.pos_back, ahead + row.pos_step)),
                          *[bound.eq(Mux(wraps, bound + row.pos_back, bound - row.pos_step)) for bound in bounds]]
        else:
            def stepped(element):
                """``element`` moved on to the next slice's."""
                return element + simd

            next_slice = []

        # piece q's window corner and line corner, q * skip past the window's: each piece's offset
        # restarts from its own registers, one or two adders deep like the first piece's
        piece_pixels = [Signal.like(cmd.offset, name=f"piece_{q}_pixel") for q in range(1, params.gather_rows)]
        piece_lines = [Signal.like(cmd.offset, name=f"piece_{q}_line") for q in range(1, params.gather_rows)]

        def restart(corner, piece_corners=None, layer_row=row):
            """The next window, of the layer of descriptor ``layer_row``, starts at ``corner``, its
            pieces at ``piece_corners`` (None: where they are; a layer whose rows are sliced alone
            does not use them)."""
            return [row_start.eq(corner), offset.eq(corner),
                    *[piece.eq(c) for piece, c in zip(pieces, piece_corners or [])],
                    *([ahead.eq(-layer_row.pos_back)] if pieces else []),
                    *[bound.eq(layer_row.row_lanes * q) for q, bound in enumerate(bounds, 1)]]

        def layer_start(layer_row):
            """The first window of the layer of descriptor ``layer_row``."""
            firsts = [layer_row.skip * q for q in range(1, params.gather_rows)]
            return [*restart(0, firsts, layer_row),
                    *[p.eq(c) for p, c in zip(piece_pixels + piece_lines, firsts * 2)]]

        def sub_corner(corner):
            """The corner of the pool window's next pixel (``sub`` + 1), for the window at ``corner``."""
            return corner + Mux(~sub[0], row.channels, 0) + Mux(sub[0] ^ sub[1], row.row_step, 0)

        with m.If(~primed):
            m.d.sync += [primed.eq(1), row.eq(looked_up), *layer_start(looked_up)]

        with m.If(~active & (gap != 0)):
            m.d.sync += gap.eq(gap - 1)
        with m.If(issue):
            m.d.sync += [active.eq(1), plane.eq(Mux(plane_last, 0, plane + 1))]
            with m.If(plane_last):
                m.d.sync += [slice_.eq(Mux(slice_last, 0, slice_ + 1)), weight_addr.eq(weight_addr + 1)]
                with m.If(~slice_last):
                    m.d.sync += [offset.eq(stepped(offset)), *[piece.eq(stepped(piece)) for piece in pieces],
                                 *next_slice]
                with m.Elif(~row_last):
                    m.d.sync += [window_row.eq(window_row + 1), *restart(row_start + row.row_step)]
                with m.Elif(~sub_last):
                    m.d.sync += [window_row.eq(0), sub.eq(sub + 1), weight_addr.eq(group_weights),
                                 *restart(sub_corner(pixel), [sub_corner(p) for p in piece_pixels])]
                with m.Elif(~group_last):
                    m.d.sync += [window_row.eq(0), sub.eq(0), group.eq(group + 1), group_weights.eq(weight_addr + 1),
                                 start_addr.eq(start_addr + 1), *restart(pixel, piece_pixels)]
                with m.Elif(~col_last):
                    moved = [p + row.pixel_step for p in piece_pixels]
                    m.d.sync += [window_row.eq(0), sub.eq(0), group.eq(0), col.eq(col + 1),
                                 weight_addr.eq(layer_weights), group_weights.eq(layer_weights),
                                 start_addr.eq(layer_starts),
                                 pixel.eq(pixel + row.pixel_step), *restart(pixel + row.pixel_step, moved),
                                 *[p.eq(c) for p, c in zip(piece_pixels, moved)]]
                with m.Elif(~line_last):
                    moved = [p + row.line_step for p in piece_lines]
                    m.d.sync += [window_row.eq(0), sub.eq(0), group.eq(0), col.eq(0), line_index.eq(line_index + 1),
                                 weight_addr.eq(layer_weights), group_weights.eq(layer_weights),
                                 start_addr.eq(layer_starts), line.eq(line + row.line_step),
                                 pixel.eq(line + row.line_step), *restart(line + row.line_step, moved),
                                 *[p.eq(c) for p, c in zip(piece_pixels + piece_lines, moved * 2)]]
                with m.Else():   # the layer's end: the next layer's images follow this one's
                    m.d.sync += [window_row.eq(0), sub.eq(0), group.eq(0), col.eq(0), line_index.eq(0),
                                 group_weights.eq(weight_addr + 1), layer_weights.eq(weight_addr + 1),
                                 start_addr.eq(start_addr + 1), layer_starts.eq(start_addr + 1),
                                 line.eq(0), pixel.eq(0), *layer_start(next_row)]
            with m.If(group_end & ~row.last):
                with m.If(out_chunk == simd // params.pe - 1):
                    m.d.sync += [out_chunk.eq(0), out_word.eq(out_word + 1)]
                with m.Else():
                    m.d.sync += out_chunk.eq(out_chunk + 1)
            with m.If(layer_end):
                m.d.sync += [active.eq(0), gap.eq(params.layer_gap), out_word.eq(0), out_chunk.eq(0),
                             layer.eq(Mux(row.last, 0, layer + 1)), row_due.eq(1)]
                with m.If(row.last):
                    m.d.sync += [weight_addr.eq(0), group_weights.eq(0), layer_weights.eq(0),
                                 start_addr.eq(0), layer_starts.eq(0)]
        # The next layer's row is taken the cycle after the layer's end, in the gap: the register
        # that enables the row's many flip-flops is then a flip-flop, not the end of the walk's
        # comparisons (next_row still holds it then: it is looked up from the layer before).
        with m.If(row_due):
            m.d.sync += [row.eq(next_row), row_due.eq(0)]
