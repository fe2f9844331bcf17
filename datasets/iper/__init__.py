"""iPER (Impersonator) videos as a dataset (TFDS builder)."""
