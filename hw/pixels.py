"""Pixel delivery: an INFER's frame bytes from the receiver into the engine's input beats."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from layout.rows import index_shape

from .framing import frame_byte_layout
from .loader import pixel_layout


class ByteBuffer(wiring.Component):
    """A one-byte register between the receiver and the engine's input: ``i.ready`` is a register
    (the buffer is empty), so the engine's ready does not reach the receiver's decisions in the
    same cycle. One byte per two cycles at most, far above the serial line's rate.

    Members
    -------
    i : In(stream.Signature(frame_byte_layout))
    o : Out(stream.Signature(frame_byte_layout))
    discard : In(1)
        Drops the byte held (:attr:`hw.receiver.RequestReceiver.discard`: it is the newest byte sent, which
        belongs to the frame cut short).
    """

    i: In(stream.Signature(frame_byte_layout))
    o: Out(stream.Signature(frame_byte_layout))
    discard: In(1)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(~self.o.valid)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(1)]
        with m.If(self.discard):
            m.d.sync += self.o.valid.eq(0)
        return m


class PixelPacker(wiring.Component):
    """Groups a frame's pixel bytes into the engine's input beats of K pixels; a frame's last
    beat is sent with the bytes it has (the engine ignores lanes past the frame's end).

    Members
    -------
    bytes : In(stream.Signature(frame_byte_layout))
    beats : Out(stream.Signature(ArrayLayout(8, pixels_per_beat)))
    discard : In(1)
        Drops the bytes of a frame cut short (:attr:`hw.receiver.RequestReceiver.discard`): those collected,
        and the beat offered unless it is a frame's last (then it is the previous, whole frame's).
    """

    def __init__(self, pixels_per_beat):
        self._per_beat = pixels_per_beat
        super().__init__({"bytes": In(stream.Signature(frame_byte_layout)),
                          "beats": Out(stream.Signature(pixel_layout(pixels_per_beat))),
                          "discard": In(1)})

    def elaborate(self, platform):
        m = Module()
        lane = Signal(index_shape(self._per_beat))
        ends_frame = Signal()            # the beat offered is a frame's last
        m.d.comb += self.bytes.ready.eq(~self.beats.valid | self.beats.ready)
        with m.If(self.beats.valid & self.beats.ready):
            m.d.sync += self.beats.valid.eq(0)
        with m.If(self.bytes.valid & self.bytes.ready):
            for k in range(self._per_beat):
                with m.If(lane == k):
                    m.d.sync += self.beats.payload[k].eq(self.bytes.payload.data)
            with m.If((lane == self._per_beat - 1) | self.bytes.payload.last):
                m.d.sync += [self.beats.valid.eq(1), lane.eq(0), ends_frame.eq(self.bytes.payload.last)]
            with m.Else():
                m.d.sync += lane.eq(lane + 1)
        with m.If(self.discard):
            m.d.sync += lane.eq(0)
            with m.If(~ends_frame):
                m.d.sync += self.beats.valid.eq(0)
        return m


class BitExpander(wiring.Component):
    """A byte of 8 binarized pixels (pixel ``k`` in bit ``k``, :mod:`model.bits` order) to one
    input beat of 8 pixels, 255 for a 1 bit and 0 for a 0 bit: the engine's threshold (any value
    0..256 a model file allows) then gives back the same bit. Combinational.

    Members
    -------
    bytes : In(stream.Signature(frame_byte_layout))
    beats : Out(stream.Signature(ArrayLayout(8, 8)))
    """

    def __init__(self):
        super().__init__({"bytes": In(stream.Signature(frame_byte_layout)),
                          "beats": Out(stream.Signature(pixel_layout(8)))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.beats.valid.eq(self.bytes.valid), self.bytes.ready.eq(self.beats.ready),
                     *[self.beats.payload[k].eq(self.bytes.payload.data[k].replicate(8)) for k in range(8)]]
        return m
