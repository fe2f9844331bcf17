"""Converts RAFT checkpoints to this port's .npz (numpy arrays only).

Accepted inputs (the format and variant are detected from the keys):
  * torchvision state dicts, e.g. `raft_large_C_T_SKHT_V2-ff5fadd5.pth`,
    `raft_small_C_T_V2-01064c6d.pth` (keys `feature_encoder.…`);
  * the original princeton-vl/RAFT checkpoints `raft-things.pth`,
    `raft-sintel.pth`, `raft-kitti.pth`, `raft-chairs.pth`, `raft-small.pth`
    (keys `module.fnet.…`, `module.update_block.gru.…`);
  * either of these saved as an .npz of numpy arrays under the torch names
    (no torch needed to convert those).

  python -m flow.raft_convert --torch_weights raft-things.pth \\
      --out raft_large.npz [--variant large]

Reading .pth files needs torch (only then); the shape check builds the
model abstractly (`flow.raft.param_shapes`).
"""

import argparse
import sys

from flow import raft
from flow.raft_weights import (
  ConversionError,
  check_params,
  detect_format,
  detect_variant,
  load_torch_state_dict,
  official_to_torchvision,
  strip_prefix,
  torchvision_to_params,
  write_npz,
)


def convert_state_dict(
  sd: dict, variant: str | None = None, source: str = "state dict"
) -> tuple[str, dict]:
  """Any supported torch-named state dict -> (variant, checked params)."""
  sd = strip_prefix(sd)
  fmt = detect_format(sd)
  found = detect_variant(sd, fmt)
  if variant is not None and variant != found:
    raise ConversionError(f"{source} holds RAFT-{found}, not {variant}")
  if fmt == "official":
    sd = official_to_torchvision(sd, found)
  params, sources = torchvision_to_params(sd)
  check_params(params, raft.param_shapes(found), source, sources)
  return found, params


def convert(path, variant: str | None = None) -> tuple[str, dict]:
  """Reads and converts a checkpoint file (.pth, .pt or torch-named .npz)."""
  sd = load_torch_state_dict(path)
  return convert_state_dict(sd, variant, source=str(path))


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--torch_weights", required=True, help=".pth/.pt/.npz")
  p.add_argument("--out", required=True, help="output .npz")
  p.add_argument("--variant", choices=("large", "small"), default=None)
  args = p.parse_args(argv)
  try:
    variant, params = convert(args.torch_weights, args.variant)
  except (ConversionError, ImportError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  write_npz(args.out, variant, params)
  n = sum(v.size for v in params.values())
  print(f"wrote {args.out}: RAFT-{variant}, {len(params)} arrays, {n} values")
  return 0


if __name__ == "__main__":
  sys.exit(main())
