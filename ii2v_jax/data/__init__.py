"""The input pipeline: prepared TFDS clips -> training and evaluation batches.

`pipeline` reads a built dataset with grain (no TensorFlow), `augment`
applies the reference clip augmentation, `poke` samples pokes from flow and
builds poke maps (shared by training, evaluation and sampling),
`flow_targets` computes the warp head's flow targets, `user_image` maps a
user's image and pokes onto the model's input (the sampling CLI and the
web app share it). May import the top-level `flow` package; nothing else of
ii2v_jax.
"""
