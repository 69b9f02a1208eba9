"""What touches the data: audio I/O and input checks, the low-res simulation, caption sidecars, the official datasets' metadata modules, pre-encoding and the demo assets."""
