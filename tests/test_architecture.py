"""The package's layering: no import cycle, and no module importing from a layer above its own.

Imports inside functions count.  The layer list is docs/ARCHITECTURE.md's.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "src" / "hf_genrec"
LAYERS = ["errors", "io_utils", "output_folders", "trainer_utils", "recipes", "semantic_ids", "remote_code", "data", "evaluation",
          "item_encoders", "item_tokenizers", "models", "generation", "hub", "training", "inference", "cli"]


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in PACKAGE_ROOT.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = name if is_package else name.rpartition(".")[0]
                module = importlib.util.resolve_name("." * node.level + (node.module or ""), base) if node.level else node.module or ""
                targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_belongs_to_a_layer():
    unplaced = [m for m in _modules() if m != "hf_genrec" and _layer(m) is None]
    assert not unplaced, f"modules outside the layer list: {unplaced}"


def test_no_import_from_a_higher_layer():
    graph = import_graph()
    breaches = sorted(f"{m} -> {t}" for m, targets in graph.items() for t in targets
                      if _layer(m) is not None and _layer(t) is not None and _layer(t) > _layer(m))
    assert not breaches, breaches


def test_no_import_cycle():
    graph = import_graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_families_are_named_only_in_their_folders_and_the_registration_line():
    """Outside models/<family>/, no module branches on a family's name (docs, help strings and tests aside)."""
    import hf_genrec  # noqa: F401
    from hf_genrec.models.registry import family_names

    offenders = []
    for path in PACKAGE_ROOT.rglob("*.py"):
        relative = path.relative_to(PACKAGE_ROOT).as_posix()
        if any(relative.startswith(f"models/{name}/") for name in family_names()):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                for side in [node.left, *node.comparators]:
                    if isinstance(side, ast.Constant) and side.value in family_names():
                        offenders.append(f"{relative}:{node.lineno}")
    assert not offenders, f"family names compared outside the family folders: {offenders}"


def test_importing_the_package_changes_no_environment_variable():
    """Only the `hf-genrec` command (hf_genrec_cli) sets OMP_WAIT_POLICY; `import hf_genrec` registers classes only."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    script = "import os, hf_genrec; print(os.environ.get('OMP_WAIT_POLICY', 'unset'))"
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "unset", out.stderr[-2000:]
    script = "import os, hf_genrec_cli, sys; sys.argv = ['hf-genrec', '--help']\ntry:\n    hf_genrec_cli.main()\nexcept SystemExit:\n    pass\nprint(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "PASSIVE", out.stderr[-2000:]
