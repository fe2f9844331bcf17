"""Frozen pretrained networks and the safe loading of their weights.

VGG conv features (perceptual loss, LPIPS backbone), LPIPS v0.1 and the
Kinetics-400 I3D (FVD). Weights come from pinned pip packages or converted
files, sha256-checked and unpickled with a restricted unpickler (`weights`).
Imports nothing else of ii2v_jax.
"""
