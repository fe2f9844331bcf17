"""Serving: the interactive web app; `python -m ii2v_jax.serve`.

`engine` holds the newest checkpoint's model, compiled at start-up for a
few fixed batch sizes, and computes the "what moves with this pixel" heat
map; `batcher` queues concurrent requests and runs them as one padded,
jitted call; `store` keeps uploaded images and rendered videos in memory
under random ids (bounded, least recently used out); `app` is the
Starlette application (the page, uploads, pokes, exports, JSON errors) and
`static/` the page itself (plain HTML, JS and CSS, nothing from the
network). Images and pokes go through `data.user_image`, the sampling
CLI's mapping. May import models, data, io, parallel and pretrained (and
the top-level `flow` package: DIS flow measures the heat map's motion);
never training, evaluate or convert.
"""
