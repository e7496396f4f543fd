"""Read untrusted YAML safely into plain values plus a ``SourceMap``.

Why not ``yaml.safe_load``: it forgets where values were written, silently keeps
the last of two duplicate keys, expands aliases without limit (a "billion
laughs" document of a few hundred bytes expands to 10^9 nodes), and turns
``on``/``yes`` or ``2024-01-01`` into booleans and dates. Here the document is
*composed* (a graph whose aliases are shared, so linear in the text), its
expanded size is measured before anything is expanded, and it is converted
into values by a walk that records positions and rejects what a manifest
never needs (custom tags, non-scalar keys, duplicate keys).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import yaml

from controller.errors import ManifestError, ManifestIssue
from controller.spec.source_map import Path, Position, SourceMap, sort_issues

MAX_FILE_BYTES = 1024 * 1024
MAX_EXPANDED_NODES = 100_000
MAX_DEPTH = 64

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{name}" for name in ("str", "int", "float", "bool", "null")}
_TEXT_TAGS = {f"{_TAG}str", f"{_TAG}timestamp"}
_MERGE = f"{_TAG}merge"

KeepText = Callable[[Path], bool]
"""Says which paths keep a scalar's source text (``8080``, ``true``) instead of its YAML type."""


def load_yaml(
    text: str | bytes, *, filename: str, keep_text: KeepText | None = None
) -> tuple[Any, SourceMap]:
    """Parse one YAML document; every problem becomes a ``ManifestError``."""
    decoded = _decode(text, filename)
    try:
        root = yaml.compose(decoded, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ManifestError([_syntax_issue(exc, filename)], filename=filename) from exc
    except RecursionError as exc:
        raise _single(filename, "the document is nested too deeply") from exc
    if root is None:
        raise _single(filename, "the file is empty")
    converter = _Converter(filename, keep_text or (lambda _path: False))
    try:
        _expanded_size(root, {}, set(), filename)
        value = converter.convert(root, (), 0)
    except RecursionError as exc:
        raise _single(filename, "the document is nested too deeply") from exc
    source = SourceMap(filename, converter.values, converter.keys)
    if converter.issues:
        raise ManifestError(sort_issues(converter.issues), filename=filename)
    return value, source


def quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _tag(node: yaml.Node) -> str:
    return str(node.tag).replace(_TAG, "!!")


def _decode(text: str | bytes, filename: str) -> str:
    raw = text.encode("utf-8", errors="surrogatepass") if isinstance(text, str) else text
    if len(raw) > MAX_FILE_BYTES:
        raise _single(filename, f"the file is {len(raw)} bytes; the limit is 1 MiB")
    if isinstance(text, str):
        return text
    try:
        return text.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _single(filename, f"not UTF-8 text (bad byte at offset {exc.start})") from exc


def _single(filename: str, message: str, node: yaml.Node | None = None) -> ManifestError:
    position = _position(node) if node is not None else None
    issue = ManifestIssue(
        "",
        message,
        filename=filename,
        line=position.line if position else None,
        column=position.column if position else None,
    )
    return ManifestError([issue], filename=filename)


def _syntax_issue(exc: yaml.YAMLError, filename: str) -> ManifestIssue:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"not valid YAML: {problem}" + (f" ({context})" if context else "")
    return ManifestIssue(
        "",
        message,
        filename=filename,
        line=mark.line + 1 if mark is not None else None,
        column=mark.column + 1 if mark is not None else None,
    )


def _expanded_size(
    node: yaml.Node, sizes: dict[int, int], open_nodes: set[int], filename: str
) -> int:
    """How many values the document has once every alias is expanded (memoised: linear)."""
    ident = id(node)
    if ident in sizes:
        return sizes[ident]
    if ident in open_nodes:
        raise _single(filename, "an alias refers to a node that contains it", node)
    if isinstance(node, yaml.ScalarNode):
        return 1
    open_nodes.add(ident)
    total = 1
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            children.extend((key, value))
    for child in children:
        total += _expanded_size(child, sizes, open_nodes, filename)
        if total > MAX_EXPANDED_NODES:
            raise _single(
                filename,
                f"this value expands to more than {MAX_EXPANDED_NODES} values "
                "(aliases multiply what they repeat); write it out or simplify it",
                node,
            )
    open_nodes.discard(ident)
    sizes[ident] = total
    return total


def _position(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


class _Converter:
    """Walks composed nodes into dicts, lists and scalars, recording positions."""

    def __init__(self, filename: str, keep_text: KeepText) -> None:
        self.filename = filename
        self.keep_text = keep_text
        self.values: dict[Path, Position] = {}
        self.keys: dict[Path, Position] = {}
        self.issues: list[ManifestIssue] = []
        self._constructor = yaml.SafeLoader("")

    def _issue(self, node: yaml.Node, path: Path, message: str) -> None:
        position = _position(node)
        issue = SourceMap(self.filename, {path: position}).issue(path, message)
        self.issues.append(issue)

    def convert(self, node: yaml.Node, path: Path, depth: int) -> Any:
        self.values.setdefault(path, _position(node))
        if depth > MAX_DEPTH:
            self._issue(node, path, f"nested more than {MAX_DEPTH} levels deep")
            return None
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != f"{_TAG}seq":
                self._issue(node, path, f"unsupported YAML tag {_tag(node)}")
            return [
                self.convert(child, (*path, i), depth + 1) for i, child in enumerate(node.value)
            ]
        if isinstance(node, yaml.MappingNode):
            if node.tag != f"{_TAG}map":
                self._issue(node, path, f"unsupported YAML tag {_tag(node)}")
            return self._mapping(node, path, depth)
        self._issue(node, path, "unsupported YAML node")
        return None

    def _scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        if node.tag in _TEXT_TAGS:
            return node.value
        if node.tag not in _SCALAR_TAGS:
            self._issue(node, path, f"unsupported YAML tag {_tag(node)}")
            return None
        if node.tag == f"{_TAG}null":
            return None
        if self.keep_text(path):
            return node.value
        return self._constructor.construct_object(node)

    def _mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.extend(self._merge_sources(value_node, path))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._issue(key_node, path, "mapping keys must be plain strings")
                continue
            key = key_node.value
            if key in result:
                first = self.keys[(*path, key)]
                self._issue(
                    key_node,
                    (*path, key),
                    f"duplicate key {quote(key)} (first written on line {first.line})",
                )
                continue
            self.keys[(*path, key)] = _position(key_node)
            result[key] = self.convert(value_node, (*path, key), depth + 1)
        for key_node, value_node in merged:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is None or key in result:
                continue
            self.keys.setdefault((*path, key), _position(key_node))
            result[key] = self.convert(value_node, (*path, key), depth + 1)
        return result

    def _merge_sources(self, value: yaml.Node, path: Path) -> list[tuple[yaml.Node, yaml.Node]]:
        """``<<: *base`` or ``<<: [*a, *b]``: the pairs to merge, earlier sources first."""
        sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                self._issue(source, path, "a merge key (<<) takes a mapping or a list of mappings")
                continue
            nested: list[tuple[yaml.Node, yaml.Node]] = []
            for key_node, value_node in source.value:
                if key_node.tag == _MERGE:
                    nested.extend(self._merge_sources(value_node, path))
                else:
                    pairs.append((key_node, value_node))
            pairs.extend(nested)
        return pairs
