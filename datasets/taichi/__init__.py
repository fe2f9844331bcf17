"""TaiChi-HD (first-order-motion-model crops) as a dataset (TFDS builder)."""
