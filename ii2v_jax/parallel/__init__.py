"""Devices: the mesh, the shardings of batches and state, multi-process start.

One place decides how arrays are laid out over the devices (`sharding`: a
data x fsdp mesh, FSDP state shardings) and how several processes join one
run (`distributed`); training, evaluation and the benchmarks all ask it.
Imports nothing else of ii2v_jax.
"""
