"""The `bnn` command."""
