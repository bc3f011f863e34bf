"""What the link's parts pass each other: the frames' CRC, a request's outcome (a token), and
the bytes of an INFER's frames."""

from amaranth.lib import crc, data

from layout.protocol import MAX_INFER_FRAMES, Command, Status

# the CRC of :func:`layout.protocol.crc16` (CRC-16/CCITT-FALSE), as a byte-wide generator
CRC16 = crc.catalog.CRC16_CCITT_FALSE(data_width=8)

# a request's outcome, from the receiver to the sender: its command (0 for an unknown code), its
# status, its seq, and the frames it fed to the engine (results to take)
token_layout = data.StructLayout({
    "command": range(max(Command) + 1), "status": range(max(Status) + 1), "seq": 8,
    "frames": range(MAX_INFER_FRAMES + 1),
})
# a byte of an INFER's frames (last: a frame's last byte)
frame_byte_layout = data.StructLayout({"data": 8, "last": 1})
