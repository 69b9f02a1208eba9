"""Training on the official wrapper: its assembly from configs, callbacks, export of the EMA weights, and the compatibility repairs 0.0.19 needs on a current stack."""
