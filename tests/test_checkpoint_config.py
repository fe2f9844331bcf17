"""An original checkpoint converts with its decoder, whatever the config."""

import numpy as np

from configs import synthetic
from ii2v_jax.convert import checkpoint_config
from ii2v_jax.convert import torch_checkpoint as tc
from ii2v_jax.models import build
from tests.test_convert import reference_shapes


def test_warp_and_colour_stats_configs_convert_to_the_reference_decoder():
  shapes = reference_shapes(64, channels=64, poke_channels=16, min_channels=16)
  sd = {k: np.broadcast_to(np.float32(0), v) for k, v in shapes.items()}
  cfg = synthetic.get_config()  # warp head, colour_stats, flow loss on
  c, changed = checkpoint_config.config_for_checkpoint(cfg, sd)
  assert c.model.output_head == "pixels" and not c.model.colour_stats
  assert c.loss.flow_weight == 0.0 and not c.data.flow_targets
  assert changed == {
    "model.colour_stats": (True, False),
    "model.output_head": ("warp", "pixels"),
    "loss.flow_weight": (1.0, 0.0),
    "data.flow_targets": (True, False),
  }
  assert cfg.model.output_head == "warp"  # the caller's config is untouched
  _, abstract = build.abstract_generator(c)
  out = tc.convert_tree(sd, abstract)  # every tensor has a place, no extras
  assert build.count_params(out) == sum(
    int(np.prod(v)) for v in shapes.values()
  )
