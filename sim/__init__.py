"""Running the gateware: cycle-accurate simulation against the golden model, and a simulated board
served on a TCP socket."""
