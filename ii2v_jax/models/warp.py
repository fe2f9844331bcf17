"""Backward warping: each output pixel samples the source image bilinearly.

The warp output head (`model.output_head = "warp"`) renders frame t as x0
sampled at q + flow_t(q), so static content is exact by construction and
motion is a displacement field instead of repainted pixels.
"""

import jax
import jax.numpy as jnp


def backward_warp(image_bhwc: jax.Array, flow_bhw2: jax.Array) -> jax.Array:
  """out[b, y, x] = image[b] at (x + u, y + v), bilinear, border-clamped.

  Args:
    image_bhwc: (B, H, W, C) source.
    flow_bhw2: (B, H, W, 2) displacement (u, v) in pixels from each output
      pixel to where it samples the source (the flow output -> source).

  Returns:
    (B, H, W, C) in the source's dtype; differentiable in image and flow.
  """
  if image_bhwc.shape[:3] != flow_bhw2.shape[:3] or flow_bhw2.shape[-1] != 2:
    raise ValueError(
      f"flow {flow_bhw2.shape} does not match image {image_bhwc.shape}: "
      "expected (B, H, W, 2)"
    )
  b, h, w, c = image_bhwc.shape
  gy, gx = jnp.meshgrid(
    jnp.arange(h, dtype=jnp.float32),
    jnp.arange(w, dtype=jnp.float32),
    indexing="ij",
  )
  x = jnp.clip(gx + flow_bhw2[..., 0].astype(jnp.float32), 0.0, w - 1.0)
  y = jnp.clip(gy + flow_bhw2[..., 1].astype(jnp.float32), 0.0, h - 1.0)
  x0 = jnp.clip(jnp.floor(x), 0, w - 2)  # w - 2: x1 stays inside
  y0 = jnp.clip(jnp.floor(y), 0, h - 2)
  fx, fy = (x - x0)[..., None], (y - y0)[..., None]
  flat = image_bhwc.reshape(b, h * w, c)

  def tap(yy, xx):
    idx = (yy * w + xx).astype(jnp.int32).reshape(b, h * w, 1)
    return jnp.take_along_axis(flat, idx, axis=1).reshape(b, h, w, c)

  top = tap(y0, x0) * (1 - fx) + tap(y0, x0 + 1) * fx
  bottom = tap(y0 + 1, x0) * (1 - fx) + tap(y0 + 1, x0 + 1) * fx
  return (top * (1 - fy) + bottom * fy).astype(image_bhwc.dtype)
