"""The host side of the serial link: the protocol (shared with the gateware), the link to a board or a
simulated one, loading models and streaming data sets against the golden model."""
