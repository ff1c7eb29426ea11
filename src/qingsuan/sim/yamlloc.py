"""YAML with line numbers: every error in a scenario names its file and line.

PyYAML's composer keeps a start mark on every node; this module turns the node tree into
plain dicts and lists that remember the line of each key and item.
"""

from __future__ import annotations

from typing import Any

import yaml


class LDict(dict[str, Any]):
    """A mapping that remembers its own line and the line of each key (1-based)."""

    line: int
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LList(list[Any]):
    """A sequence that remembers its own line and each item's line (1-based)."""

    line: int
    item_lines: list[int]


class YamlError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}")


def load(text: str) -> Any:
    """Parse one YAML document into LDict / LList / scalars. Raises YamlError."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        message = f"not valid YAML: {exc.problem or exc}"
        if exc.context and exc.context_mark is not None and exc.context_mark.line + 1 != line:
            # e.g. an unclosed quote or bracket: say where it was opened
            message += f" ({exc.context} that starts on line {exc.context_mark.line + 1})"
        raise YamlError(line, message) from None
    except yaml.YAMLError as exc:
        raise YamlError(1, f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    if node is None:
        return None
    return _convert(node, yaml.SafeLoader(""))


def _convert(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = LDict()
        out.line = line
        out.key_lines = {}
        for key_node, value_node in node.value:
            key = _convert(key_node, loader)
            if not isinstance(key, str):
                raise YamlError(key_node.start_mark.line + 1,
                                f"keys must be names, got {key!r}")
            if key in out:
                raise YamlError(key_node.start_mark.line + 1, f"duplicate key {key!r}")
            out[key] = _convert(value_node, loader)
            out.key_lines[key] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = LList(_convert(item, loader) for item in node.value)
        seq.line = line
        seq.item_lines = [item.start_mark.line + 1 for item in node.value]
        return seq
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise YamlError(line, f"bad value: {exc}") from None
