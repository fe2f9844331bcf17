"""Interop with the original PyTorch code; `python -m ii2v_jax.convert`.

`torch_checkpoint` reads state_dicts (torch optional) and maps them onto our
params, `checkpoint_config` infers the config a checkpoint needs, and
`converter` writes a resumable workdir from them. May import every room
below the entry points, training included (it builds a train state).
"""
