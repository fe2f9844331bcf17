"""The package's rooms: import direction, no import circles, docstrings.

Imports are read statically (every `import` in a file, lazy ones inside
functions included), so a circle that only a rarely run path closes is
still found.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("ii2v_jax", "flow", "datasets", "configs")
# Room -> the rooms of ii2v_jax it may import (the top-level entry points,
# `ii2v_jax.sample` and `ii2v_jax.bench`, may import any room).
ROOMS = {
  "models": set(),
  "pretrained": set(),
  "data": set(),
  "parallel": set(),
  "io": {"models"},
  "evaluate": {"models", "pretrained", "data", "parallel", "io"},
  "training": {"models", "pretrained", "data", "parallel", "io", "evaluate"},
  "convert": {"models", "pretrained", "data", "parallel", "io", "training"},
  "serve": {"models", "pretrained", "data", "parallel", "io"},
}


def module_name(path: pathlib.Path) -> str:
  parts = list(path.relative_to(ROOT).with_suffix("").parts)
  if parts[-1] == "__init__":
    parts.pop()
  return ".".join(parts)


def imports_of(path: pathlib.Path, known: set[str]) -> set[str]:
  """Project modules `path` imports (`from a import b` may name a module)."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0:
      base = node.module or ""
      subs = [f"{base}.{a.name}" for a in node.names]
      # `from pkg import module` is an edge to the module alone.
      names = [n for n in subs if n in known] or [base]
    else:
      continue
    for name in names:
      while name and name not in known:
        name = name.rpartition(".")[0]
      if name:
        found.add(name)
  return found


def project_graph() -> dict[str, set[str]]:
  files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
  files.append(ROOT / "launch.py")
  known = {module_name(p) for p in files}
  graph = {}
  for p in files:
    name = module_name(p)
    # A module's own enclosing packages run before it anyway: no edge.
    graph[name] = {
      d for d in imports_of(p, known) if not f"{name}.".startswith(f"{d}.")
    }
  return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  state, stack = {}, []

  def visit(node):
    state[node] = "open"
    stack.append(node)
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == "open":
        return stack[stack.index(nxt) :] + [nxt]
      if nxt not in state and (cycle := visit(nxt)):
        return cycle
    state[node] = "done"
    stack.pop()
    return None

  for node in sorted(graph):
    if node not in state and (cycle := visit(node)):
      return cycle
  return None


def test_no_import_circles_anywhere():
  graph = project_graph()
  assert "ii2v_jax.models.generator" in graph  # the walk found the package
  assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_find_cycle_finds_one():
  assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [
    "a", "b", "c", "a",
  ]  # fmt: skip
  assert find_cycle({"a": {"b"}, "b": set()}) is None


def room_of(module: str) -> str | None:
  parts = module.split(".")
  if parts[0] == "ii2v_jax" and len(parts) > 1 and parts[1] in ROOMS:
    return parts[1]
  return None


def test_rooms_import_one_way():
  wrong = []
  for module, deps in project_graph().items():
    room = room_of(module)
    if room is None:
      continue
    for dep in deps:
      other = room_of(dep)
      if dep.startswith("ii2v_jax") and other != room:
        if other not in ROOMS[room]:  # None: an entry point or the root
          wrong.append(f"{module} imports {dep}")
  assert not wrong, "\n".join(wrong)


def test_top_level_is_small_and_every_room_says_what_it_holds():
  top = [
    p.name for p in (ROOT / "ii2v_jax").iterdir() if p.name != "__pycache__"
  ]
  assert len(top) <= 12, sorted(top)
  rooms = [
    p for p in (ROOT / "ii2v_jax").iterdir() if (p / "__init__.py").exists()
  ]
  assert {p.name for p in rooms} == set(ROOMS)
  for room in rooms:
    doc = ast.get_docstring(ast.parse((room / "__init__.py").read_text()))
    assert doc and len(doc.split()) >= 25, room.name
