"""The pure iterative algorithm: no trio, no sockets, no reading of clocks or global randomness."""
