"""Scoring super-resolution: LSD in both conventions, the simulated-cutoff protocol and its baselines, spectrogram plots."""
