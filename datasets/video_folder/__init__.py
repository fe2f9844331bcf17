"""Any folder of videos or frame folders as a dataset (TFDS builder)."""
