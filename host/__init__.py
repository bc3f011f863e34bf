"""The host side of the serial link: the link to a board or a
simulated one, loading models and streaming data sets against the golden model."""
