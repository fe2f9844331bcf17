"""Human3.6M videos as a dataset (TFDS builder)."""
