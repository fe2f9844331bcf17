"""Devices: the mesh and the shardings of batches and train state.

One place decides how arrays are laid out over the devices, and training,
evaluation and the benchmarks all ask it. Imports nothing else of ii2v_jax.
"""
