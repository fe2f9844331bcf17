"""Every preset loads, declares only known keys, and describes itself."""

import importlib

import pytest

from configs import default

PRESETS = ["synthetic", "tiny", "plants", "iper", "human36m", "taichi"]


def flat_keys(c, prefix=""):
  out = set()
  for k, v in c.items():
    if hasattr(v, "items"):
      out |= flat_keys(v, f"{prefix}{k}.")
    else:
      out.add(f"{prefix}{k}")
  return out


@pytest.mark.parametrize("name", PRESETS)
def test_presets_only_override_declared_keys(name):
  c = importlib.import_module(f"configs.{name}").get_config()
  assert flat_keys(c) == flat_keys(default.get_config())


@pytest.mark.parametrize("name", ["plants", "iper", "human36m", "taichi"])
def test_dataset_presets_take_resolution_argument(name):
  mod = importlib.import_module(f"configs.{name}")
  c64, c128 = mod.get_config(), mod.get_config("128")
  assert (c64.data.resolution, c128.data.resolution) == (64, 128)
  assert c64.data.name.endswith("/64") and c128.data.name.endswith("/128")
  assert c64.model.channels == 512  # Reference widths.
  with pytest.raises(ValueError, match="64 or 128"):
    mod.get_config("96")


def test_reference_hyperparameters():
  c = importlib.import_module("configs.iper").get_config()
  assert c.optim.lr == 1e-4 and c.optim.lr_reduce == 0.3
  assert tuple(c.optim.lr_milestone_epochs) == (10, 25, 50)
  assert c.loss.vgg_dyn_weight == 5.0 and c.loss.latent_dynamics_weight == 0.1
  assert c.data.num_frames == 10 and c.data.poke_size == 3
  assert c.data.filter_flow and c.train.batch_size == 8


def test_deviations_off_in_presets_and_older_workdirs_load():
  from ii2v_jax.models import build, generator

  for name in ("iper", "plants", "human36m", "taichi"):
    c = importlib.import_module(f"configs.{name}").get_config()
    assert not c.model.colour_stats and c.gan.enabled
  old = importlib.import_module("configs.tiny").get_config()
  del old.model["colour_stats"]  # A workdir written before the switch.
  assert old.model.get("colour_stats") is None
  gen = build.build_generator(old)
  assert not gen.dec.colour_stats
  assert isinstance(gen, generator.Generator)


@pytest.mark.parametrize("name", ["iper", "plants", "human36m", "taichi"])
def test_preset_dataset_names_match_builders(name):
  c = importlib.import_module(f"configs.{name}").get_config("128")
  builder_name, config_name = c.data.name.split("/")
  module = importlib.import_module(
    f"datasets.{builder_name}.{builder_name}_dataset_builder"
  )
  assert module.Builder.name == builder_name
  assert config_name in {cfg.name for cfg in module.Builder.BUILDER_CONFIGS}
