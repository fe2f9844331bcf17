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


def test_every_key_has_a_declared_rule_and_presets_meet_them():
  from configs import validate

  assert set(default.RULES) == flat_keys(default.get_config())
  for name in PRESETS:
    validate.check_config(
      importlib.import_module(f"configs.{name}").get_config()
    )


@pytest.mark.parametrize(
  "key, value, words",
  [
    ("train.batch_size", -3, "must be an int >= 1"),
    ("train.keep_checkpoints", 0, "must be an int >= 1"),
    ("train.num_steps", -5, "must be an int >= 0"),
    ("optim.lr", float("nan"), "must be a number > 0"),
    ("optim.eps", 0.0, "must be a number > 0"),
    ("optim.b2", 1.0, "in [0, 1)"),
    ("data.resolution", 100, "power of two >= 32"),
    ("data.poke_size", 40, "must be <= 31 at data.resolution 64"),
    ("model.channels", 0, "must be an int >= 1"),
    ("model.output_head", "bogus", "one of pixels, warp"),
    ("mesh.data", 0, "-1 or >= 1"),
    ("gan.temporal_width", 48, "multiple of 32"),
    ("loss.flow_weight", 1.0, "model.output_head='warp'"),
    ("loss.perceptual_layers", ("relu9_9",), "relu1_1"),
    ("eval.metrics", "lpips,bogus", "comma-separated list of lpips"),
  ],
)
def test_bad_values_are_named_as_typed_or_as_set(key, value, words):
  from configs import validate

  c = default.get_config()
  section, name = key.split(".")
  c[section][name] = value
  typed = validate.typed_overrides(["launch.py", f"--config.{key}={value}"])
  with pytest.raises(validate.ConfigError) as typed_error:
    validate.check_config(c, typed)
  assert str(typed_error.value).startswith(f"--config.{key}={value}: ")
  assert words in str(typed_error.value)
  with pytest.raises(validate.ConfigError) as file_error:
    validate.check_config(c, {})
  assert "(set by the config file)" in str(file_error.value)
  assert f"override with --config.{key}=" in str(file_error.value)
  assert "\n" not in str(file_error.value)


def test_typed_overrides_keep_the_users_spelling():
  from configs import validate

  argv = ["launch.py", "--config", "configs/tiny.py", "--config.seed", "-1"]
  argv += ["--noconfig.gan.enabled", "--config.optim.lr=1e-3"]
  assert validate.typed_overrides(argv) == {
    "seed": "--config.seed -1",
    "gan.enabled": "--noconfig.gan.enabled",
    "optim.lr": "--config.optim.lr=1e-3",
  }
  assert validate.config_path(argv) == "configs/tiny.py"
  with pytest.raises(validate.ConfigError, match="did you mean"):
    validate.check_argv(argv + ["--config.train.bach_size=2"])
