"""What the official model factory builds from JSON: SAGA-SR's conditioners and pretransforms, their registration, config checks, and loading weights strictly."""
