"""Reading and checking request bodies: every mistake is an ApiError.

An ApiError carries the HTTP status and one sentence for the page; the
app turns it into {"error": sentence}.
"""

import json
import math

MAX_JSON_BYTES = 64 * 1024
MAX_POKES = 5  # iPOKE's limit for one poke map (REFERENCE.md 11.10).
MAX_SHOVE = 2.0  # |dx|, |dy| as fractions of the image's width / height.


class ApiError(Exception):
  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status
    self.message = message


async def read_body(request, limit: int) -> bytes:
  """The request body, refused with 413 past `limit` bytes."""
  declared = request.headers.get("content-length", "")
  if declared.isdigit() and int(declared) > limit:
    raise ApiError(413, f"request is too large (limit {_size(limit)})")
  chunks, total = [], 0
  async for chunk in request.stream():
    total += len(chunk)
    if total > limit:
      raise ApiError(413, f"request is too large (limit {_size(limit)})")
    chunks.append(chunk)
  return b"".join(chunks)


def _size(n: int) -> str:
  return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n // 1024} KiB"


def _no_constants(name: str):
  raise ValueError(f"{name} is not a number JSON allows")


def parse_json(body: bytes) -> dict:
  """A JSON object, or ApiError 400 saying what is wrong."""
  try:
    value = json.loads(body, parse_constant=_no_constants)
  except RecursionError:
    raise ApiError(400, "malformed JSON: nested too deeply") from None
  except (ValueError, UnicodeDecodeError) as e:
    raise ApiError(400, f"malformed JSON: {str(e)[:120]}") from None
  if not isinstance(value, dict):
    raise ApiError(400, "the request must be a JSON object")
  return value


def number(value, what: str) -> float:
  """A finite JSON number (not a bool, not a string) as a float."""
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise ApiError(400, f"{what} must be a number, got {_kind(value)}")
  try:
    out = float(value)
  except OverflowError:
    out = math.inf
  if not math.isfinite(out):
    raise ApiError(400, f"{what} must be a finite number")
  return out


def _kind(value) -> str:
  if value is None:
    return "null"
  return {
    bool: "true/false",
    str: "text",
    list: "a list",
    dict: "an object",
  }.get(type(value), type(value).__name__)


def identifier(body: dict, key: str) -> str:
  value = body.get(key)
  if not isinstance(value, str) or not value or len(value) > 64:
    raise ApiError(400, f'"{key}" must be the id the server gave out')
  return value


def location(value, what: str) -> tuple[float, float]:
  """[x, y] as fractions of the image, each in [0, 1)."""
  if not isinstance(value, list) or len(value) != 2:
    raise ApiError(400, f"{what} must be [x, y], fractions of the image")
  x, y = (number(v, f"{what} {n}") for v, n in zip(value, "xy"))
  if not (0 <= x < 1 and 0 <= y < 1):
    raise ApiError(
      400,
      f"{what} lies off the image (x={x:g}, y={y:g}; fractions of the "
      "image, from 0 up to 1)",
    )
  return x, y


def pokes(value) -> list[tuple[float, float, float, float]]:
  """A list of 1..MAX_POKES [x, y, dx, dy], fractions of the image."""
  if not isinstance(value, list) or not value:
    raise ApiError(
      400, '"pokes" must be a non-empty list of [x, y, dx, dy] (drag to poke)'
    )
  if len(value) > MAX_POKES:
    raise ApiError(400, f"at most {MAX_POKES} pokes at once, got {len(value)}")
  out = []
  for i, p in enumerate(value, 1):
    if not isinstance(p, list) or len(p) != 4:
      raise ApiError(400, f"poke {i} must be [x, y, dx, dy], got {_kind(p)}")
    x, y = location(p[:2], f"poke {i}")
    dx, dy = (number(v, f"poke {i} d{n}") for v, n in zip(p[2:], "xy"))
    if max(abs(dx), abs(dy)) > MAX_SHOVE:
      raise ApiError(
        400,
        f"poke {i} shoves too far (at most {MAX_SHOVE:g} image widths or "
        "heights)",
      )
    if dx == 0 and dy == 0:
      raise ApiError(400, f"poke {i} has no direction: drag, then release")
    out.append((x, y, dx, dy))
  return out
