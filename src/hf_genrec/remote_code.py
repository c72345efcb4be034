"""Checkpoints that carry their own code, so they load with ``trust_remote_code=True`` without hf_genrec.

transformers' own mechanism (``register_for_auto_class`` -> ``custom_object_save``) copies a class's
module and the modules it imports from *its own folder* (``from .x import``).  hf_genrec's model files
also import package modules from higher up (``from ...errors import``): that copy cannot follow them
(it even fails on them) and a flat copy could not resolve them.  So hf_genrec configs
(:class:`RemoteCodeConfigMixin`) and tokenizers call :func:`save_remote_code` when they save: it
writes each named module and every hf_genrec module it imports, recursively, flat into the
checkpoint folder, with each of those imports rewritten into a same-folder one
(``from .errors import ...``).  The source tree keeps exactly one copy of every module.

A class loaded *as remote code* lives outside hf_genrec (in transformers' module cache, whose files
are already flat); the Auto classes register it for its auto class, so transformers' own copy
saves it again and this module steps aside.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
from pathlib import Path
from typing import Any, ClassVar, Iterable

from .errors import ConfigError
from .io_utils import atomic_write_text

PACKAGE = __name__.split(".")[0]


def is_package_class(cls: type) -> bool:
    """Whether ``cls`` comes from the installed package (not from a checkpoint's remote code)."""
    return PACKAGE == "hf_genrec" and cls.__module__.startswith("hf_genrec.")


def _source_path(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ConfigError(f"remote code: module {module!r} not found")
    if spec.submodule_search_locations is not None:
        raise ConfigError(f"remote code: {module!r} is a package; saved code must import from its modules")
    return Path(spec.origin)


def _package_imports(module: str, tree: ast.Module) -> list[tuple[ast.ImportFrom, str]]:
    """Every ``from <hf_genrec module> import ...`` of ``module`` (anywhere in the file) and its target."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bad = [a.name for a in node.names if a.name.split(".")[0] == PACKAGE]
            if bad:
                raise ConfigError(f"remote code: {module} uses `import {bad[0]}`; use `from .module import name`")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = importlib.util.resolve_name("." * node.level + (node.module or ""), module.rpartition(".")[0])
            elif node.module and node.module.split(".")[0] == PACKAGE:
                target = node.module
            else:
                continue
            found.append((node, target))
    return found


def code_closure(modules: Iterable[str]) -> dict[str, Path]:
    """``modules`` and every package module they import, recursively: module name -> source file."""
    closure: dict[str, Path] = {}
    todo = list(modules)
    while todo:
        module = todo.pop(0)
        if module in closure:
            continue
        closure[module] = path = _source_path(module)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        todo.extend(target for _, target in _package_imports(module, tree))
    leaves: dict[str, str] = {}
    for module in closure:
        leaf = module.rpartition(".")[2]
        if leaf in leaves:
            raise ConfigError(f"remote code: {leaves[leaf]} and {module} would both be saved as {leaf}.py")
        leaves[leaf] = module
    return closure


def flat_source(module: str, path: Path) -> str:
    """The module's source with every package import turned into a same-folder one (``from .leaf import``)."""
    source = path.read_text(encoding="utf-8")
    lines = source.encode("utf-8").splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    edits = []
    for node, target in _package_imports(module, ast.parse(source, filename=str(path))):
        flat = ast.ImportFrom(module=target.rpartition(".")[2], names=node.names, level=1)
        begin = starts[node.lineno - 1] + node.col_offset  # col offsets count UTF-8 bytes
        end = starts[node.end_lineno - 1] + node.end_col_offset
        edits.append((begin, end, ast.unparse(flat).encode("utf-8")))
    data = b"".join(lines)
    for begin, end, text in sorted(edits, reverse=True):
        data = data[:begin] + text + data[end:]
    return data.decode("utf-8")


def save_remote_code(save_directory: str | os.PathLike, modules: Iterable[str]) -> list[Path]:
    """Write ``modules`` and the package modules they import, flat, into ``save_directory``; return the files.

    Each written file is checked the way transformers will read it on load: its same-folder imports
    must name written files and it must not import hf_genrec.
    """
    from transformers.dynamic_module_utils import get_imports, get_relative_imports

    closure = code_closure(modules)
    directory = Path(save_directory)
    written = []
    for module, path in closure.items():
        target = directory / path.name
        atomic_write_text(target, flat_source(module, path))
        written.append(target)
    names = {p.stem for p in written}
    for target in written:
        missing = [m for m in get_relative_imports(target) if m not in names]
        if missing or PACKAGE in get_imports(target):
            raise ConfigError(f"remote code: {target.name} would not load without {PACKAGE} (imports {missing or PACKAGE})")
    return written


def _check_reference(package: str, reference: str) -> str:
    """The module of a ``"module.Class"`` reference, after checking the class exists there."""
    leaf, _, name = reference.rpartition(".")
    module = f"{package}.{leaf}"
    if not hasattr(importlib.import_module(module), name):
        raise ConfigError(f"remote code: {module} has no {name} (auto_map entry {reference!r})")
    return module


class RemoteCodeConfigMixin:
    """Config mixin: ``save_pretrained`` also records ``auto_map`` and saves the code it names.

    ``remote_auto_map`` maps Auto class names to ``"module.Class"`` references in the config's own
    folder (the model classes included: ``model.save_pretrained`` saves its config, so every
    checkpoint gets the code).  Put the mixin before ``PretrainedConfig`` in the bases.
    """

    remote_auto_map: ClassVar[dict[str, str]] = {}

    def save_pretrained(self, save_directory: str | os.PathLike, push_to_hub: bool = False, **kwargs: Any):
        if self.remote_auto_map:
            self.auto_map = {**(getattr(self, "auto_map", None) or {}), **self.remote_auto_map}
            if is_package_class(type(self)):
                package = type(self).__module__.rpartition(".")[0]
                modules = {_check_reference(package, ref) for ref in self.remote_auto_map.values()}
                os.makedirs(save_directory, exist_ok=True)
                save_remote_code(save_directory, sorted(modules))
        return super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)


def register_auto_classes(
    config_class: type,
    model_class: type | None = None,
    auto_classes: Iterable[str] = (),
    tokenizer_class: type | None = None,
    processor_class: type | None = None,
) -> None:
    """The package's one way to register with transformers' Auto classes (idempotent).

    ``AutoConfig`` learns ``config_class.model_type``; each name in ``auto_classes`` (e.g.
    ``"AutoModelForSeq2SeqLM"``) learns ``model_class``; ``AutoTokenizer`` / ``AutoProcessor`` learn
    the tokenizer / processor of the config.
    """
    import transformers

    transformers.AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    for name in auto_classes:
        getattr(transformers, name).register(config_class, model_class, exist_ok=True)
    if tokenizer_class is not None:
        transformers.AutoTokenizer.register(config_class, tokenizer_class=tokenizer_class, exist_ok=True)
    if processor_class is not None:
        transformers.AutoProcessor.register(config_class, processor_class, exist_ok=True)


__all__ = ["RemoteCodeConfigMixin", "code_closure", "flat_source", "is_package_class", "register_auto_classes", "save_remote_code"]
