"""The trainable networks of II2V and their rollout.

The generator (E_sigma, E_phi, the ConvGRU dynamics, the decoder and the
optional warp head), the two discriminators with spectral norm, their
building blocks, `build` (networks from a config, params as pure dicts) and
`inference` (the jitted rollout, pixel-range conversions). Imports only jax,
flax and numpy: nothing else of ii2v_jax.
"""
