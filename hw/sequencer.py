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
    ``out_word``/``out_chunk`` locate the group's P output bits in the written bank (0 in the
    output layer, which writes scores).

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


class _Walk:
    """The state both walks keep, and the conditions they share.

    ``primed``, ``layer``, ``row`` and ``next_row`` are the table's side (see
    :meth:`Sequencer.elaborate`), ``looked_up`` the row the table gives; ``plane`` to ``gap`` are
    counters and flags that the shared part (:meth:`Sequencer._pace`) and the walk step together.
    The sequencer sets ``issue`` and ``plane_last``; the walk sets ``group_end`` (a group's
    output bits are complete) and ``layer_end`` (the layer's last command).
    """

    def __init__(self, params, command, looked_up):
        self.looked_up = looked_up
        self.primed = Signal()
        self.layer = Signal(index_shape(params.max_layers))
        self.row = Signal(looked_up.shape())
        self.next_row = Signal(looked_up.shape())
        self.plane = Signal(range(PLANES))
        self.weight_addr = Signal.like(command.weight_addr)
        self.start_addr = Signal.like(command.start_addr)
        self.group = Signal.like(command.group)
        self.out_word = Signal.like(command.out_word)
        self.out_chunk = Signal.like(command.out_chunk)
        self.active = Signal()
        self.gap = Signal(range(params.layer_gap + 1), init=2)
        self.issue = self.plane_last = self.group_end = self.layer_end = None


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
        # until then. When a walk takes the next row is its own choice.
        walk = _Walk(params, self.command, looked_up)
        row = walk.row
        m.d.comb += lookup.addr.eq(Mux(~walk.primed | row.last, 0, walk.layer + 1))
        m.d.sync += walk.next_row.eq(looked_up)
        with m.If(~walk.primed):
            m.d.sync += [walk.primed.eq(1), row.eq(looked_up)]

        start = ~walk.active & (walk.gap == 0) & (~row.first | self.frame_ready) & (~row.last | self.scores_free)
        walk.issue = walk.active | start
        walk.plane_last = ~row.bit_serial | (walk.plane == PLANES - 1)
        (self._walk_windows if params.conv else self._walk_slices)(m, walk)
        self._drive_command(m, walk)
        self._pace(m, walk)
        return m

    def _pace(self, m, walk):
        """What both walks do alike with the walk's ``group_end`` and ``layer_end``: the gap
        between layers, the plane counter, the output bits' place, the next layer's number, and
        the addresses' return to 0 after a frame. Emitted after the walk's own statements, so
        that the return to 0 takes precedence over the walk's steps."""
        params, row = self._params, walk.row
        with m.If(~walk.active & (walk.gap != 0)):
            m.d.sync += walk.gap.eq(walk.gap - 1)
        with m.If(walk.issue):
            m.d.sync += [walk.active.eq(1), walk.plane.eq(Mux(walk.plane_last, 0, walk.plane + 1))]
            # the output layer writes scores, not activation bits: its commands' out_word/out_chunk are unused
            with m.If(walk.group_end & ~row.last):
                with m.If(walk.out_chunk == params.simd // params.pe - 1):
                    m.d.sync += [walk.out_chunk.eq(0), walk.out_word.eq(walk.out_word + 1)]
                with m.Else():
                    m.d.sync += walk.out_chunk.eq(walk.out_chunk + 1)
            with m.If(walk.layer_end):
                m.d.sync += [walk.active.eq(0), walk.gap.eq(params.layer_gap), walk.out_word.eq(0),
                             walk.out_chunk.eq(0), walk.layer.eq(Mux(row.last, 0, walk.layer + 1))]
                with m.If(row.last):
                    m.d.sync += [walk.weight_addr.eq(0), walk.start_addr.eq(0)]

    def _walk_slices(self, m, walk):
        """A fully connected engine's walk: per layer, groups, slices and planes, innermost last.
        The layer's row is taken at its end."""
        cmd, row, next_row = self.command, walk.row, walk.next_row
        slice_ = Signal.like(cmd.slice)
        # "this is the last slice / group of the layer", kept with the counters
        slice_last = Signal()
        group_last = Signal()
        with m.If(~walk.primed):
            m.d.sync += [slice_last.eq(walk.looked_up.last_slice == 0),
                         group_last.eq(walk.looked_up.last_group == 0)]
        op_last = walk.plane_last & slice_last
        walk.group_end = op_last
        walk.layer_end = op_last & group_last
        m.d.comb += [
            cmd.first.eq((slice_ == 0) & (walk.plane == 0)),
            cmd.last.eq(op_last),
            cmd.slice.eq(slice_),
        ]
        with m.If(walk.issue):
            with m.If(walk.plane_last):
                m.d.sync += [walk.weight_addr.eq(walk.weight_addr + 1),
                             slice_.eq(Mux(slice_last, 0, slice_ + 1)),
                             slice_last.eq(Mux(slice_last, row.last_slice == 0, slice_ + 1 == row.last_slice))]
            with m.If(op_last):
                m.d.sync += [walk.start_addr.eq(walk.start_addr + 1),
                             walk.group.eq(Mux(group_last, 0, walk.group + 1)),
                             group_last.eq(Mux(group_last, row.last_group == 0, walk.group + 1 == row.last_group))]
            with m.If(walk.layer_end):
                m.d.sync += [row.eq(next_row),
                             slice_last.eq(next_row.last_slice == 0), group_last.eq(next_row.last_group == 0)]

    def _drive_command(self, m, walk):
        """The command fields both walks drive alike (the others depend on the walk), and
        ``frame_taken``."""
        cmd, row = self.command, walk.row
        m.d.comb += [
            cmd.valid.eq(walk.issue),
            cmd.plane.eq(walk.plane),
            cmd.shift.eq(Mux(row.bit_serial, walk.plane, 1)),
            cmd.from_input.eq(row.first),
            cmd.parity.eq(walk.layer[0]),
            cmd.weight_addr.eq(walk.weight_addr),
            cmd.start_addr.eq(walk.start_addr),
            cmd.group.eq(walk.group),
            cmd.out_word.eq(walk.out_word),
            cmd.out_chunk.eq(walk.out_chunk),
            cmd.last_layer.eq(row.last),
            cmd.frame_end.eq(walk.layer_end & row.last),
        ]
        m.d.sync += self.frame_taken.eq(walk.issue & walk.layer_end & row.first)

    def _walk_windows(self, m, walk):
        """A ``conv`` engine's walk (``docs/engine.md``, "Convolutions and max-pools"): per layer,
        lines, columns, groups, pool pixels, window rows, slices and planes, innermost last; the
        read offset is kept by adders from the row's steps. The layer's row is taken the cycle
        after its end."""
        params, cmd, row, next_row = self._params, self.command, walk.row, walk.next_row
        plane, weight_addr, start_addr, group = walk.plane, walk.weight_addr, walk.start_addr, walk.group
        issue, plane_last = walk.issue, walk.plane_last
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
        col = Signal.like(row.last_col)
        line_index = Signal.like(row.last_line)
        group_weights = Signal.like(cmd.weight_addr)     # the group's first weight word
        layer_weights = Signal.like(cmd.weight_addr)     # the layer's
        layer_starts = Signal.like(cmd.start_addr)
        row_due = Signal()
        # "this is the last slice / window row / group / column / line of the layer", kept with the
        # counters: the end-of-layer condition is an AND of flip-flops, not of five comparisons
        slice_last = Signal()
        row_last = Signal()
        group_last = Signal()
        col_last = Signal()
        line_last = Signal()
        sub_last = ~row.pool | (sub == 3)
        window_end = plane_last & slice_last & row_last
        walk.group_end = window_end & sub_last
        walk.layer_end = walk.group_end & group_last & col_last & line_last

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
            """The first window of the layer of descriptor ``layer_row``, and the flags of its counters at 0."""
            firsts = [layer_row.skip * q for q in range(1, params.gather_rows)]
            return [*restart(0, firsts, layer_row),
                    *[p.eq(c) for p, c in zip(piece_pixels + piece_lines, firsts * 2)],
                    slice_last.eq(layer_row.last_slice == 0), row_last.eq(layer_row.last_row == 0),
                    group_last.eq(layer_row.last_group == 0), col_last.eq(layer_row.last_col == 0),
                    line_last.eq(layer_row.last_line == 0)]

        def sub_corner(corner):
            """The corner of the pool window's next pixel (``sub`` + 1), for the window at ``corner``."""
            return corner + Mux(~sub[0], row.channels, 0) + Mux(sub[0] ^ sub[1], row.row_step, 0)

        with m.If(~walk.primed):
            m.d.sync += layer_start(walk.looked_up)

        with m.If(issue):
            with m.If(plane_last):
                m.d.sync += [slice_.eq(Mux(slice_last, 0, slice_ + 1)), weight_addr.eq(weight_addr + 1),
                             slice_last.eq(Mux(slice_last, row.last_slice == 0, slice_ + 1 == row.last_slice))]
                # each branch below restarts the counters inside the one it steps: their flags
                # restart with them (a counter at 0 is last when its limit is 0)
                restarted_rows = [window_row.eq(0), row_last.eq(row.last_row == 0)]
                restarted_groups = [group.eq(0), group_last.eq(row.last_group == 0)]
                with m.If(~slice_last):
                    m.d.sync += [offset.eq(stepped(offset)), *[piece.eq(stepped(piece)) for piece in pieces],
                                 *next_slice]
                with m.Elif(~row_last):
                    m.d.sync += [window_row.eq(window_row + 1), row_last.eq(window_row + 1 == row.last_row),
                                 *restart(row_start + row.row_step)]
                with m.Elif(~sub_last):
                    m.d.sync += [*restarted_rows, sub.eq(sub + 1), weight_addr.eq(group_weights),
                                 *restart(sub_corner(pixel), [sub_corner(p) for p in piece_pixels])]
                with m.Elif(~group_last):
                    m.d.sync += [*restarted_rows, sub.eq(0), group.eq(group + 1),
                                 group_last.eq(group + 1 == row.last_group), group_weights.eq(weight_addr + 1),
                                 start_addr.eq(start_addr + 1), *restart(pixel, piece_pixels)]
                with m.Elif(~col_last):
                    moved = [p + row.pixel_step for p in piece_pixels]
                    m.d.sync += [*restarted_rows, sub.eq(0), *restarted_groups, col.eq(col + 1),
                                 col_last.eq(col + 1 == row.last_col),
                                 weight_addr.eq(layer_weights), group_weights.eq(layer_weights),
                                 start_addr.eq(layer_starts),
                                 pixel.eq(pixel + row.pixel_step), *restart(pixel + row.pixel_step, moved),
                                 *[p.eq(c) for p, c in zip(piece_pixels, moved)]]
                with m.Elif(~line_last):
                    moved = [p + row.line_step for p in piece_lines]
                    m.d.sync += [*restarted_rows, sub.eq(0), *restarted_groups, col.eq(0),
                                 col_last.eq(row.last_col == 0), line_index.eq(line_index + 1),
                                 line_last.eq(line_index + 1 == row.last_line), weight_addr.eq(layer_weights), group_weights.eq(layer_weights),
                                 start_addr.eq(layer_starts), line.eq(line + row.line_step),
                                 pixel.eq(line + row.line_step), *restart(line + row.line_step, moved),
                                 *[p.eq(c) for p, c in zip(piece_pixels + piece_lines, moved * 2)]]
                with m.Else():   # the layer's end: the next layer's images follow this one's
                    m.d.sync += [window_row.eq(0), sub.eq(0), group.eq(0), col.eq(0), line_index.eq(0),
                                 group_weights.eq(weight_addr + 1), layer_weights.eq(weight_addr + 1),
                                 start_addr.eq(start_addr + 1), layer_starts.eq(start_addr + 1),
                                 line.eq(0), pixel.eq(0), *layer_start(next_row)]
            with m.If(walk.layer_end):
                m.d.sync += row_due.eq(1)
                with m.If(row.last):
                    m.d.sync += [group_weights.eq(0), layer_weights.eq(0), layer_starts.eq(0)]
        # The next layer's row is taken the cycle after the layer's end, in the gap: the register
        # that enables the row's many flip-flops is then a flip-flop, not the end of the walk's
        # comparisons (next_row still holds it then: it is looked up from the layer before).
        with m.If(row_due):
            m.d.sync += [row.eq(next_row), row_due.eq(0)]
