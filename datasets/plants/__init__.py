"""Poking Plants (II2V's own recordings) as a dataset (TFDS builder)."""
