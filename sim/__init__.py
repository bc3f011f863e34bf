"""Running the gateware: cycle-accurate simulation against the golden model."""
