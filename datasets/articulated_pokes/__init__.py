"""Synthetic articulated-pokes dataset (TFDS builder: `Builder`)."""
