"""YAML with line numbers: every error in a scenario names its file and line.

The document is built straight from the parser's events (libyaml's C parser when PyYAML has
it, else the pure-Python one) into plain dicts and lists that remember the line of each key
and item. Building it here rather than through PyYAML's composer bounds what a hostile file
can cost: nesting depth (the C composer recurses and crashes on deep nesting), and the
nodes that aliases expand to (a 600-byte alias bomb stands for billions of nodes; PyYAML
builds them). Aliases of an anchor defined later or inside itself are refused.
"""

from __future__ import annotations

from typing import Any, Final

import yaml
from yaml import events as ev
from yaml.nodes import ScalarNode

#: nesting of mappings and lists (a scenario needs 4)
MAX_DEPTH: Final = 64
#: the longest number, date or boolean (any text beyond is a mistake)
MAX_NUMBER_CHARS: Final = 100
#: nodes that aliases may stand for, over the whole document
MAX_ALIAS_NODES: Final = 100_000

_MISSING: Final = object()
_PLAIN_CACHE: Final = 65_536
_Loader: Final[type] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR: Final = "tag:yaml.org,2002:str"
_MAP: Final = "tag:yaml.org,2002:map"
_SEQ: Final = "tag:yaml.org,2002:seq"
#: scalar tags and how to build them (the safe ones; anything else is refused)
_SCALARS: Final = {tag: yaml.SafeLoader.yaml_constructors[tag] for tag in (
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp", _STR)}


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
    loader = _Loader(text)
    try:
        return _Builder(loader).document()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        message = f"not valid YAML: {exc.problem or exc}"
        if exc.context and exc.context_mark is not None and exc.context_mark.line + 1 != line:
            # e.g. an unclosed quote or bracket: say where it was opened
            message += f" ({exc.context} that starts on line {exc.context_mark.line + 1})"
        if "tab" not in message and "\t" in _line_text(text, line):
            message += " (a tab on this line: YAML indents with spaces)"
        raise YamlError(line, message) from None
    except yaml.YAMLError as exc:
        raise YamlError(1, f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()


class _Frame:
    """A mapping or list being built: its value, size in nodes, anchor and pending key."""

    __slots__ = ("anchor", "key", "key_line", "size", "value")

    def __init__(self, value: LDict | LList, anchor: str | None) -> None:
        self.value = value
        self.anchor = anchor
        self.size = 1
        self.key: str | None = None
        self.key_line = 0


class _Builder:
    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.constructor = yaml.SafeLoader("")  # builds scalars of the safe tags
        #: anchor -> (value, its size in nodes)
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.alias_nodes = 0
        #: plain scalar text -> its value (ids, names, kinds and times repeat)
        self.plain: dict[str, Any] = {}

    def document(self) -> Any:
        get = self.loader.get_event
        get()  # StreamStartEvent
        first = get()
        if isinstance(first, ev.StreamEndEvent):
            return None
        value = self._node()
        end = get()  # DocumentEndEvent
        following = get()
        if not isinstance(following, ev.StreamEndEvent):
            raise YamlError(_line(following), "expected one document, found another (---)")
        del end
        return value

    def _node(self) -> Any:
        """The document's root, built from the events without recursion."""
        get = self.loader.get_event
        scalar_event, alias_event, end_events = ev.ScalarEvent, ev.AliasEvent, (
            ev.MappingEndEvent, ev.SequenceEndEvent)
        stack: list[_Frame] = []
        while True:
            event = get()
            kind = type(event)
            if kind is scalar_event:
                line = event.start_mark.line + 1
                value, size = self._scalar(event, line), 1
                if event.anchor is not None:
                    self.anchors[event.anchor] = (value, 1)
            elif kind in end_events:
                done = stack.pop()
                value, size = done.value, done.size
                line = value.line
                if done.anchor is not None:
                    self.anchors[done.anchor] = (value, size)
            elif kind is alias_event:
                line = event.start_mark.line + 1
                if event.anchor not in self.anchors:
                    raise YamlError(line, f"alias *{event.anchor} names no anchor defined "
                                          "before it")
                value, size = self.anchors[event.anchor]
                self.alias_nodes += size
                if self.alias_nodes > MAX_ALIAS_NODES:
                    raise YamlError(line, f"aliases stand for more than {MAX_ALIAS_NODES:,} "
                                          "values (an alias bomb?): refused")
            else:  # MappingStartEvent, SequenceStartEvent
                line = event.start_mark.line + 1
                if len(stack) >= MAX_DEPTH:
                    raise YamlError(line, f"nested more than {MAX_DEPTH} deep")
                new: LDict | LList
                if kind is ev.MappingStartEvent:
                    self._check_tag(event.tag, _MAP, line)
                    new = LDict()
                    new.key_lines = {}
                else:
                    self._check_tag(event.tag, _SEQ, line)
                    new = LList()
                    new.item_lines = []
                new.line = line
                stack.append(_Frame(new, event.anchor))
                continue
            if not stack:
                return value
            parent = stack[-1]
            parent.size += size
            target = parent.value
            if isinstance(target, LList):
                target.append(value)
                target.item_lines.append(line)
            elif parent.key is None:
                if type(value) is not str:
                    raise YamlError(line, f"keys must be names, got {_short(value)}")
                if value in target:
                    raise YamlError(line, f"duplicate key {_short(value)}")
                parent.key, parent.key_line = value, line
            else:
                target[parent.key] = value
                target.key_lines[parent.key] = parent.key_line
                parent.key = None

    def _scalar(self, event: Any, line: int) -> Any:
        value: str = event.value
        tag = event.tag
        if tag is None or tag == "!":
            if not event.implicit[0]:  # quoted: text
                return value
            known = self.plain.get(value, _MISSING)
            if known is not _MISSING:
                return known
            tag = self.loader.resolve(ScalarNode, value, event.implicit)
        if tag == _STR:
            result: Any = value
        else:
            construct = _SCALARS.get(tag)
            if construct is None:
                raise YamlError(line, f"bad value: the tag {tag} is not allowed here")
            if len(value) > MAX_NUMBER_CHARS:
                raise YamlError(line, f"bad value: {len(value):,} characters is too long for "
                                      f"a {tag.rsplit(':', 1)[-1]}")
            try:
                result = construct(self.constructor, ScalarNode(tag, value))
            except (yaml.YAMLError, ValueError) as exc:
                raise YamlError(line, f"bad value: {exc}") from None
        if event.tag is None and len(self.plain) < _PLAIN_CACHE:
            self.plain[value] = result  # (every value built here is immutable)
        return result

    def _check_tag(self, tag: str | None, default: str, line: int) -> None:
        if tag is not None and tag != "!" and tag != default:
            raise YamlError(line, f"the tag {tag} is not allowed here")


def _line_text(text: str, line: int) -> str:
    """Line ``line`` (1-based) of ``text``, without splitting the whole text."""
    start = 0
    for _ in range(line - 1):
        start = text.find("\n", start) + 1
        if start == 0:
            return ""
    end = text.find("\n", start)
    return text[start:] if end < 0 else text[start:end]


def _line(event: Any) -> int:
    return int(event.start_mark.line) + 1


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:80]}..."
