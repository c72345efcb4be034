"""Reading flat YAML recipes into dataclasses with HfArgumentParser: one path for every recipe.

HfArgumentParser.parse_dict neither coerces nor checks types, so keys and types are checked here
first; every problem is a ConfigError that names the file and the key.
"""

from __future__ import annotations

import os
import re
from dataclasses import fields
from types import UnionType
from typing import Any, Sequence, Union, get_args, get_origin, get_type_hints

import yaml
from transformers import HfArgumentParser

from ..errors import ConfigError

RECIPE_FILE = "recipe.yaml"  # a trained model folder's (and each of its checkpoints') copy of its recipe


class RecipeYamlLoader(yaml.SafeLoader):
    """YAML 1.2 scalars: only true/false are booleans and ``1e-3`` is a float; a key given twice is an error.

    PyYAML implements YAML 1.1, which reads ``eval_strategy: no`` as False, and keeps the last of two
    equal keys without a word.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if key in first_line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {first_line[key]})", key_node.start_mark
                )
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


RecipeYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
RecipeYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# YAML 1.1 needs a dot in a float: ``learning_rate: 1e-3`` would be the string "1e-3".
RecipeYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$"), list("-+0123456789")
)


def load_recipe_yaml(text: Any) -> Any:
    """Parse recipe YAML (a string or an open file) with :class:`RecipeYamlLoader`."""
    loader = RecipeYamlLoader(text)  # a SafeLoader: python/* tags are refused
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: ``line N: problem`` (PyYAML's own message spans several lines)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"line {mark.line + 1}: {problem}" if mark is not None else problem


def read_yaml_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """The flat mapping of a recipe file; a missing, unreadable, empty or malformed file is a ConfigError."""
    try:
        with open(path, encoding="utf-8") as handle:
            values = load_recipe_yaml(handle)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise ConfigError(f"{path}: recipe file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the recipe ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({yaml_problem(exc)})") from None
    if values is None:
        raise ConfigError(f"{path}: the recipe file is empty")
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a recipe is a flat mapping of keys to values")
    return values


def apply_overrides(values: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``key=value`` strings (values parsed as YAML) on top of ``values``."""
    values = dict(values)
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {override!r} is not key=value")
        try:
            values[key.strip().replace("-", "_")] = load_recipe_yaml(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {override!r}: invalid YAML value ({yaml_problem(exc)})") from None
    return values


def parse_with_defaults(
    classes: Sequence[type],
    defaults: dict[str, Any],
    path: str | os.PathLike | None,
    overrides: dict[str, Any],
    output_dir: str,
) -> tuple:
    """``defaults`` < the YAML at ``path`` (optional) < ``overrides`` (None values ignored), then parsed."""
    values = dict(defaults)
    source = str(path) if path is not None else "<defaults>"
    if path is not None:
        values.update(read_yaml_mapping(path))
    values.update({k: v for k, v in overrides.items() if v is not None})
    values.setdefault("output_dir", output_dir)
    return parse_into(classes, values, source)


def parse_into(classes: Sequence[type], values: dict[str, Any], source: str | os.PathLike) -> tuple:
    """Check ``values`` against the dataclasses' fields, then parse them with HfArgumentParser."""
    known = {f.name for cls in classes for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown recipe keys {unknown}")
    hints: dict[str, Any] = {}
    nullable: set[str] = set()
    for cls in reversed(classes):
        hints.update(get_type_hints(cls))
        nullable |= {f.name for f in fields(cls) if f.default is None}
    for key, value in values.items():
        if value is None and key not in nullable and not _admits_none(hints.get(key)):
            raise ConfigError(f"{source}: key {key!r} must have a value, got null")
        problem = _type_problem(hints.get(key), value)
        if problem:
            raise ConfigError(f"{source}: key {key!r} expects {problem}, got {value!r}")
    try:
        return tuple(HfArgumentParser(tuple(classes)).parse_dict(values))
    except (TypeError, ValueError) as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith(str(source)) else f"{source}: {message}") from None


def _admits_none(hint: Any) -> bool:
    return hint is None or hint is Any or (get_origin(hint) in (Union, UnionType) and type(None) in get_args(hint))


def _type_problem(hint: Any, value: Any) -> str | None:
    """A description of the expected type when ``value`` does not fit ``hint``; None when it fits."""
    if value is None:
        return None
    options = get_args(hint) if get_origin(hint) in (Union, UnionType) else (hint,)
    options = tuple(o for o in options if o is not type(None))
    if len(options) == 1 and get_origin(options[0]) is list:
        (element,) = get_args(options[0]) or (Any,)
        if not isinstance(value, list):
            return f"a list of {getattr(element, '__name__', element)}"
        bad = [v for v in value if _type_problem(element, v)]
        return f"a list of {element.__name__}" if bad else None
    accepted = _scalar_types(options)
    if accepted and not (isinstance(value, accepted) and not (isinstance(value, bool) and bool not in accepted)):
        return " or ".join(t.__name__ for t in accepted)
    return None


def _scalar_types(options: tuple) -> tuple[type, ...]:
    """The plain scalar types admitted (float admits int); () when the hint is not a plain scalar."""
    if not options or not all(o in (int, float, str, bool) for o in options):
        return ()
    return tuple(dict.fromkeys([*options, *((int,) if float in options else ())]))
