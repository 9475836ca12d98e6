"""Bounded reading of policy text: YAML and TOML parsed within limits, and YAML written back.

Every read is bounded before anything is built: at most `MAX_POLICY_BYTES` of text, 64 levels
of nesting, 100,000 nodes (every use of a YAML alias counted in full), integers of at most 64
digits, TOML keys of at most 64 dotted parts. A policy file is opened without blocking and must
be a regular file. YAML scalars are read the YAML 1.2 way (``on``, ``yes``, ``04:00`` and dates
stay strings) and a key given twice is an error. Errors are `PolicyError` with file:line:column
where known. `backuppolicy.core.policy` builds a `Policy` from what is read here; the recovery
plans (`backuppolicy.workflows.recovery`) read their own files with the same bounds.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from typing import Any, Final, NoReturn

import yaml

from backuppolicy.core.exceptions import PolicyError, short_repr

__all__ = [
    "MAX_POLICY_BYTES",
    "BoundedLoader",
    "PolicyDumper",
    "PolicyLoader",
    "check_shape",
    "check_text",
    "check_toml_keys",
    "line_of",
    "load_yaml",
    "read_policy_text",
    "with_location",
]


MAX_POLICY_BYTES: Final = 1024 * 1024
"""Largest policy file or text read, in bytes (1 MiB); a larger one is refused unparsed."""

_MAX_DEPTH: Final = 64  # nesting levels of a policy document
_MAX_NODES: Final = 100_000  # nodes of a policy document, every alias use counted in full
_MAX_INT_DIGITS: Final = 64  # far below int()'s 4,300-digit limit


# --------------------------------------------------------------------------------------------
# YAML loading: YAML 1.2-like scalars (no `on: -> True`, no `04:00 -> 240`), duplicate keys rejected.


class BoundedLoader(yaml.SafeLoader):
    """A safe loader that bounds the document while composing it, before anything is built.

    At most `_MAX_DEPTH` levels of nesting and `_MAX_NODES` nodes, where every use of an alias
    counts the whole node it names (so a "billion laughs" document is refused after a few
    thousand nodes, not expanded), no alias inside the node it names, and integers of at most
    `_MAX_INT_DIGITS` digits.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._total = 0
        self._sizes: dict[int, int] = {}

    @staticmethod
    def _refuse(problem: str, mark: Any) -> NoReturn:
        raise yaml.composer.ComposerError(None, None, problem, mark)

    def _count(self, size: int, mark: Any) -> None:
        self._total += size
        if self._total > _MAX_NODES:
            self._refuse(
                f"found more than {_MAX_NODES} nodes, counting every alias use in full", mark
            )

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """Compose one node, counting its expanded size and its depth."""
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            named = self.anchors.get(str(event.anchor))
            if named is not None:
                size = self._sizes.get(id(named))
                if size is None:
                    problem = f"found the alias *{event.anchor} inside the node it names"
                    self._refuse(problem, event.start_mark)
                self._count(size, event.start_mark)
            return super().compose_node(parent, index)
        if self._depth >= _MAX_DEPTH:
            self._refuse(f"found more than {_MAX_DEPTH} levels of nesting", event.start_mark)
        self._depth += 1
        before = self._total
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._count(1, event.start_mark)
        self._sizes[id(node)] = self._total - before
        return node


class PolicyLoader(BoundedLoader):
    """A bounded safe loader that reads `on`/`off`/`yes`/`no`, times and dates as strings."""


PolicyLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag
        not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
PolicyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
PolicyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+|0o[0-7_]+)$"),
    list("-+0123456789"),
)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in result
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "found an unhashable key", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"found the key {short_repr(key)} twice",
                key_node.start_mark,
            )
        result[key] = loader.construct_object(value_node, deep=True)
    return result


PolicyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    digits = sum(ch.isalnum() for ch in str(node.value))
    if digits > _MAX_INT_DIGITS:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"found an integer of {digits} digits (at most {_MAX_INT_DIGITS})",
            node.start_mark,
        )
    return loader.construct_yaml_int(node)


BoundedLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
PolicyLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


class PolicyDumper(yaml.SafeDumper):
    """Dumps mappings in insertion order and lists indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:  # noqa: FBT001, FBT002 - PyYAML's signature
        """Indent a block sequence under its key (never indentless)."""
        del indentless
        super().increase_indent(flow, indentless=False)


# Characters YAML reads as line breaks (NEL, LS, PS). With allow_unicode PyYAML writes them raw
# inside a quoted scalar, and reading that back folds them into a space: such strings are
# written double-quoted with escapes instead.
_YAML_BREAKS = frozenset("\x85\u2028\u2029")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """Represent *value* as PyYAML does, double-quoted where it holds a YAML line break."""
    if _YAML_BREAKS.isdisjoint(value):
        return dumper.represent_str(value)
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')


PolicyDumper.add_representer(str, _represent_str)


def check_text(text: str, source: str) -> None:
    """Refuse a policy text over `MAX_POLICY_BYTES` (characters never outnumber UTF-8 bytes)."""
    if (
        len(text) > MAX_POLICY_BYTES
        or len(text.encode("utf-8", "surrogatepass")) > MAX_POLICY_BYTES
    ):
        raise PolicyError(
            f"{source}: expected a policy of at most {MAX_POLICY_BYTES} bytes "
            f"(got {len(text.encode('utf-8', 'surrogatepass'))} bytes).",
            expected=f"at most {MAX_POLICY_BYTES} bytes",
            got=len(text),
        )


# A TOML key of more than _MAX_DEPTH dotted parts (bare or quoted parts, as TOML writes them).
# Possessive parts, and never starting inside a bare part: the search stays linear in the text.
_TOML_DEEP_KEY_RE: Final = re.compile(
    r"""(?<![A-Za-z0-9_-])(?:[A-Za-z0-9_-]++|"[^"\n]*+"|'[^'\n]*+')"""
    rf"""(?:[ \t]*+\.[ \t]*+(?:[A-Za-z0-9_-]++|"[^"\n]*+"|'[^'\n]*+')){{{_MAX_DEPTH},}}"""
)


def check_toml_keys(text: str, source: str) -> None:
    """Refuse TOML keys of more than `_MAX_DEPTH` dotted parts before tomllib parses them.

    tomllib keeps every prefix of a dotted key, so its memory grows with the square of the
    number of parts: a key of 200,000 parts (400 KB) takes tens of gigabytes.
    """
    if _TOML_DEEP_KEY_RE.search(text):
        raise PolicyError(
            f"{source}: expected TOML keys of at most {_MAX_DEPTH} dotted parts "
            "(found a longer one).",
            expected=f"keys of at most {_MAX_DEPTH} dotted parts",
            got=None,
        )


_UNTERMINATED = {
    "while scanning a quoted scalar": "string",
    "while parsing a flow sequence": "'[' list",
    "while parsing a flow mapping": "'{' mapping",
    "while scanning a simple key": "key",
}


def _syntax_error(exc: yaml.MarkedYAMLError, source: str) -> tuple[str, str]:
    """``(where, problem)`` of a YAML error, pointing at where an unclosed construct STARTED.

    PyYAML marks where it gave up (``problem_mark``: for a quote never closed, often the end of
    the file) and where the construct it was reading started (``context_mark``). For a string,
    list or mapping never closed the start is what a person must fix, so *where* is the start
    and *problem* names both lines: ``"unterminated string starting at line 3, column 10;
    found unexpected end of stream at line 7, column 1"``. Other errors keep PyYAML's words,
    at the problem's place, with the start's line when it has one.
    """
    start, end = exc.context_mark, exc.problem_mark
    context = str(exc.context or "")
    if start is not None and end is not None and context in _UNTERMINATED:
        problem = (
            f"unterminated {_UNTERMINATED[context]} starting at line {start.line + 1}, "
            f"column {start.column + 1}; {exc.problem} at line {end.line + 1}, "
            f"column {end.column + 1}"
        )
        return f"{source}:{start.line + 1}:{start.column + 1}", problem
    mark = end or start
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
    if start is not None and end is not None and context and start.line != end.line:
        context = f"{context} starting at line {start.line + 1}, column {start.column + 1}:"
    problem = " ".join(part for part in (context, str(exc.problem or "")) if part)
    return where, problem


def load_yaml(
    text: str, source: str = "<string>", loader_class: type[BoundedLoader] = PolicyLoader
) -> tuple[Any, yaml.Node | None]:
    """Parse YAML text once with *loader_class*; return the data and the node tree (for lines).

    Syntax errors and refused documents become `PolicyError` with file:line:column.
    """
    check_text(text, source)
    loader: BoundedLoader | None = None
    try:
        loader = loader_class(text)
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        where, problem = _syntax_error(exc, source)
        # Not chained: PyYAML's own text quotes the offending line, which may hold a secret
        # the file should have referenced; file:line:column says where to look.
        raise PolicyError(
            f"{where}: expected valid YAML ({problem}).", expected="valid YAML", got=problem
        ) from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise PolicyError(
            f"{source}: expected valid YAML ({short_repr(str(exc))}).",
            expected="valid YAML",
            got=type(exc).__name__,
        ) from exc
    finally:
        if loader is not None:
            loader.dispose()
    return data, node


def check_shape(data: object, source: str) -> None:
    """Refuse parsed data deeper than `_MAX_DEPTH`, larger than `_MAX_NODES` or with huge ints."""
    stack: list[tuple[object, int]] = [(data, 1)]
    count = 0
    while stack:
        value, depth = stack.pop()
        count += 1
        problem = ""
        if depth > _MAX_DEPTH:
            problem = f"more than {_MAX_DEPTH} levels of nesting"
        elif count > _MAX_NODES:
            problem = f"more than {_MAX_NODES} values"
        elif isinstance(value, int) and value.bit_length() > _MAX_INT_DIGITS * 4:
            problem = f"an integer of more than {_MAX_INT_DIGITS} digits"
        if problem:
            raise PolicyError(
                f"{source}: expected a policy document (got {problem}).",
                expected="a policy document",
                got=problem,
            )
        if isinstance(value, Mapping):
            stack.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, list | tuple):
            stack.extend((item, depth + 1) for item in value)


def read_policy_text(path: str | os.PathLike[str]) -> str:
    """The text of a policy file: a regular file of at most `MAX_POLICY_BYTES`, in UTF-8.

    The file is opened without blocking (a FIFO named like a policy never hangs) and checked
    with ``fstat`` before anything is read; at most ``MAX_POLICY_BYTES + 1`` bytes are read.
    """
    name = short_repr(os.fspath(path), limit=400)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise PolicyError.for_field("path", "an existing policy file", os.fspath(path)) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise PolicyError.for_field(
            "path", "a readable policy file", os.fspath(path), hint=f"({short_repr(str(exc))})"
        ) from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise PolicyError(
            f"{name}: expected a regular file (got a {_file_kind(info.st_mode)}).",
            path="path",
            expected="a regular file",
            got=os.fspath(path),
        )
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > MAX_POLICY_BYTES:
            raise _too_big(name, info.st_size)
        try:
            raw = handle.read(MAX_POLICY_BYTES + 1)
        except OSError as exc:
            raise PolicyError.for_field(
                "path", "a readable policy file", os.fspath(path), hint=f"({exc})"
            ) from exc
    if len(raw) > MAX_POLICY_BYTES:  # it grew after fstat
        raise _too_big(name, len(raw))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError.for_field(
            "path", "a UTF-8 policy file", os.fspath(path), hint=f"({exc})"
        ) from exc


def _too_big(name: str, size: int) -> PolicyError:
    return PolicyError(
        f"{name}: expected a file of at most {MAX_POLICY_BYTES} bytes (got {size} bytes or more).",
        path="path",
        expected=f"at most {MAX_POLICY_BYTES} bytes",
        got=size,
    )


def _file_kind(mode: int) -> str:
    kinds = {
        stat.S_ISDIR: "directory",
        stat.S_ISFIFO: "FIFO",
        stat.S_ISCHR: "character device",
        stat.S_ISBLK: "block device",
        stat.S_ISSOCK: "socket",
    }
    return next((word for test, word in kinds.items() if test(mode)), "special file")


def _path_tokens(path: str) -> list[str | int]:
    return [
        int(part.group(2)) if part.group(2) is not None else part.group(1)
        for part in re.finditer(r"([^.\[\]]+)|\[(\d+)\]", path)
    ]


def line_of(node: yaml.Node | None, path: str) -> int | None:
    """The 1-based line of the YAML node at *path* (or of its deepest existing parent)."""
    line = None
    for token in _path_tokens(path):
        if isinstance(node, yaml.MappingNode) and isinstance(token, str):
            found = [pair for pair in node.value if getattr(pair[0], "value", None) == token]
            if not found:
                break
            line = found[0][0].start_mark.line + 1
            node = found[0][1]
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(token, int)
            and token < len(node.value)
        ):
            node = node.value[token]
            line = node.start_mark.line + 1
        else:
            break
    return line


def with_location(exc: PolicyError, source: str) -> PolicyError:
    """*exc* with its message prefixed by *source* (a file, or file:line), its cause kept."""
    located = PolicyError(f"{source}: {exc}", path=exc.path, expected=exc.expected, got=exc.got)
    located.__cause__ = exc.__cause__
    return located
