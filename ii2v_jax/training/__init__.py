"""Training: the loop, the pure train step, GAN terms, optimizers, state.

`train.train_and_evaluate(config, workdir)` is what `launch.py` runs;
`describe` is its `--mode=describe`. May import models, pretrained, data,
parallel, io and evaluate (for the periodic quick metrics); nothing imports
training except the entry points and `convert`.
"""
