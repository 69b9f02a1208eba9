"""What a person runs: the ``saga-sr`` command line."""
