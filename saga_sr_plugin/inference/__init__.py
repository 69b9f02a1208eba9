"""Upsampling with a trained model: settings, eq. 4's guided sampler on the official Euler loop, windows, low-frequency replacement and the upsampler."""
