"""Checks a resolved config against the rules declared in configs/default.py.

Every user error becomes one `ConfigError` line that names the value as the
user gave it (`--config.train.batch_size=-3`, or `train.batch_size=-3 (set
by configs/x.py)` for a value the file chose) and what would be valid. The
checks here read the config alone (no jax, no files); the ones that look at
devices, datasets and workdirs live in `ii2v_jax.training.preflight`.
"""

import difflib
import math
import pathlib
import re

import ml_collections
from absl import flags

from configs import default

FLAG = re.compile(r"^--?(no)?config\.([\w.]+)(=.*)?$")
CONDITION = re.compile(r"^(>=|>|<=|<|==) (-?[\d.e+-]+)$")
INTERVAL = re.compile(r"^in ([\[(])(-?[\d.]+), (-?[\d.]+)([\])])$")
TYPE_NAMES = {int: "an int", float: "a number", bool: "true or false"}
TYPE_NAMES |= {str: "a string"}


class ConfigError(ValueError):
  """A config value a user set or chose is not valid (one line)."""


def typed_overrides(argv) -> dict[str, str]:
  """{key: the override as typed} for every `--config.KEY...` in argv."""
  argv, out = list(argv), {}
  for i, arg in enumerate(argv):
    match = FLAG.match(arg)
    if not match:
      continue
    text = arg
    follows = argv[i + 1] if i + 1 < len(argv) else "--"
    if match.group(3) is None and not follows.startswith("--"):
      text = f"{arg} {follows}"  # absl's `--flag value` form.
    out[match.group(2)] = text
  return out


def name_value(key: str, value, typed: dict) -> str:
  """The value as the user gave it (the flag), or as the file set it."""
  if key in typed:
    return typed[key]
  return f"{key}={value!r} (set by the config file)"


def fail(key: str, value, typed: dict, why: str):
  """Raises the one-line error for `key`."""
  hint = "" if key in typed else f"; override with --config.{key}=..."
  raise ConfigError(f"{name_value(key, value, typed)}: {why}{hint}")


def _holds(value, condition: str) -> bool:
  """Whether a number meets one condition of a rule (see default.RULES)."""
  if m := CONDITION.match(condition):
    op, bound = m.group(1), float(m.group(2))
    return {
      ">=": value >= bound,
      ">": value > bound,
      "<=": value <= bound,
      "<": value < bound,
      "==": value == bound,
    }[op]
  if m := INTERVAL.match(condition):
    lo, hi = float(m.group(2)), float(m.group(3))
    above = value >= lo if m.group(1) == "[" else value > lo
    below = value <= hi if m.group(4) == "]" else value < hi
    return above and below
  if m := re.match(r"^power of two >= (\d+)$", condition):
    return value >= int(m.group(1)) and not int(value) & (int(value) - 1)
  if m := re.match(r"^multiple of (\d+)$", condition):
    return value % int(m.group(1)) == 0
  raise AssertionError(f"unknown rule {condition!r} in configs/default.py")


def meets(value, rule) -> bool:
  """Whether a scalar meets a rule: choices, or conditions with
  ' or ' between alternatives, ' and ' between parts that all must hold."""
  if rule is None:
    return True
  if isinstance(rule, tuple):
    return value in rule
  if rule == "not empty":
    return bool(value)
  if isinstance(value, float) and not math.isfinite(value):
    return False
  return any(
    all(_holds(value, part) for part in alt.split(" and "))
    for alt in rule.split(" or ")
  )


def _type_ok(value, kind) -> bool:
  if isinstance(kind, tuple):  # A tuple of kind[0].
    return isinstance(value, (tuple, list)) and all(
      _type_ok(v, kind[0]) for v in value
    )
  if kind is float:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
  if kind is int:
    return isinstance(value, int) and not isinstance(value, bool)
  return isinstance(value, kind)


def _wording(kind, rule) -> str:
  if isinstance(kind, tuple):
    what = f"a list of {TYPE_NAMES[kind[0]].split(' ', 1)[1]}s"
  else:
    what = TYPE_NAMES[kind]
  if isinstance(rule, tuple):
    return f"one of {', '.join(map(str, rule))}"
  rule = rule and rule.replace("== ", "")
  return f"{what} {rule}" if rule else what


def check_declared(config, typed: dict) -> None:
  """Every declared key: present, of its type, within its rule."""
  for key, (kind, rule, *hint) in default.RULES.items():
    value = config
    for part in key.split("."):
      value = value.get(part) if hasattr(value, "get") else None
    if value is None and not isinstance(kind, tuple):
      fail(key, value, typed, f"must be {_wording(kind, rule)}")
    items = value if isinstance(kind, tuple) else [value]
    ok = _type_ok(value, kind) and all(meets(v, rule) for v in items)
    if not ok:
      extra = f" ({hint[0]})" if hint else ""
      fail(key, value, typed, f"must be {_wording(kind, rule)}{extra}")


def check_config(config, typed: dict | None = None) -> None:
  """The declared rules, then the rules between keys.

  Raises:
    ConfigError: the first invalid value, as one line.
  """
  typed = typed or {}
  check_declared(config, typed)
  d, loss, model = config.data, config.loss, config.model
  # The poke window keeps at least 2x2 candidate pixels (data/poke.py).
  most = (d.resolution - 2) // 2
  if d.poke_size > most:
    fail(
      "data.poke_size",
      d.poke_size,
      typed,
      f"must be <= {most} at data.resolution {d.resolution} (odd, e.g. 3)",
    )
  if config.gan.enabled and d.num_frames < 2:
    fail(
      "data.num_frames",
      d.num_frames,
      typed,
      "must be >= 2 with the temporal discriminator (gan.enabled)",
    )
  if loss.flow_weight and not (model.output_head == "warp" and d.flow_targets):
    fail(
      "loss.flow_weight",
      loss.flow_weight,
      typed,
      "must be 0 unless model.output_head='warp' and data.flow_targets=True",
    )
  _check_perceptual(loss, typed)
  _check_metrics(config.eval.metrics, typed)


def _check_perceptual(loss, typed: dict) -> None:
  blocks = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
  names = [
    f"relu{b}_{i}"
    for b, n in enumerate(blocks[loss.perceptual_net], 1)
    for i in range(1, n + 1)
  ]
  unknown = [x for x in loss.perceptual_layers if x not in names]
  if unknown or not loss.perceptual_layers:
    fail(
      "loss.perceptual_layers",
      tuple(loss.perceptual_layers),
      typed,
      f"must be a non-empty list of {loss.perceptual_net} layers from "
      f"{', '.join(names)}",
    )
  if loss.perceptual_net == "vgg19" and not loss.perceptual_weights:
    fail(
      "loss.perceptual_weights",
      loss.perceptual_weights,
      typed,
      "vgg19 needs a converted weight file (python -m ii2v_jax.convert "
      "--torchvision_vgg19 PATH.pth --out FILE.npz)",
    )


def _check_metrics(metrics: str, typed: dict) -> None:
  known = default.METRICS
  given = [m.strip() for m in metrics.split(",") if m.strip()]
  if not given or set(given) - set(known):
    fail(
      "eval.metrics",
      metrics,
      typed,
      f"must be a comma-separated list of {','.join(known)}",
    )


def config_path(argv) -> str | None:
  """The value of --config in argv, None if absent."""
  for i, arg in enumerate(argv):
    if m := re.match(r"^--?config(=(.*))?$", arg):
      if m.group(1) is not None:
        return m.group(2)
      return argv[i + 1] if i + 1 < len(argv) else None
  return None


def check_argv(argv) -> None:
  """What can be told before the config file runs: the file exists and
  every override names a declared key."""
  path = config_path(argv)
  if path is not None:
    file = pathlib.Path(path.split(":", 1)[0])
    if not file.is_file():
      what = "is a directory" if file.is_dir() else "no such file"
      raise ConfigError(f"--config {path}: {what}; e.g. configs/synthetic.py")
  for key, text in typed_overrides(argv).items():
    if key not in default.RULES:
      near = difflib.get_close_matches(key, default.RULES, n=1)
      hint = f"; did you mean --config.{near[0]}?" if near else ""
      raise ConfigError(f"{text}: unknown config key {key}{hint}")


def parse_flags(flag_values, argv) -> list[str]:
  """Parses argv into absl `flag_values` holding a config_flags `config`
  flag; returns the rest of argv.

  Raises:
    ConfigError: a flag or config-file error (the file is user code, so
      any exception it raises is one), as one line.
  """
  try:
    check_argv(argv)
    # Parsed afresh when called again in-process (tests): config_flags
    # defines one flag per override, which may not be defined twice.
    for name in [n for n in flag_values if n.startswith("config.")]:
      delattr(flag_values, name)
    flag_values.unparse_flags()
    rest = flag_values(argv)
    check_loaded(flag_values.config, argv)
  except ConfigError:
    raise
  except Exception as e:  # noqa: BLE001
    raise ConfigError(flag_error(e, argv)) from None
  return rest


def check_loaded(config, argv) -> None:
  """The config file gave a ConfigDict (a file that failed to load
  raises its error on first use)."""
  if isinstance(config, ml_collections.ConfigDict):
    return
  if type(config).__name__ == "_ErrorConfig":
    config.get("seed")  # Raises the load error.
  raise ConfigError(
    f"--config {config_path(argv)}: get_config() returned "
    f"{type(config).__name__}, not an ml_collections.ConfigDict"
  )


def flag_error(e: BaseException, argv) -> str:
  """One line for an error absl or the config file raised while parsing."""
  if "--config must have a value" in str(e) and config_path(argv):
    return f"--config {config_path(argv)}: get_config() returned None"
  lines = [line.strip() for line in str(e).splitlines() if line.strip()]
  text = lines[-1] if "Traceback" in str(e) else (lines or [repr(e)])[0]
  if "Traceback" in str(e) or not isinstance(e, flags.Error):
    if not re.match(r"^\w+(Error|Exception)\b", text):
      text = f"{type(e).__name__}: {text}"
    return f"--config {config_path(argv)}: {text}"
  text = text.removeprefix("flag ")
  m = re.match(r"^--config\.([\w.]+)=", text)
  if m and m.group(1) in default.RULES:
    kind, rule, *_ = default.RULES[m.group(1)]
    text += f"; must be {_wording(kind, rule)}"
  return text
