"""YAML files with line marks: the loader every input file of the suite shares.

Case files, the grid, the requirements catalogue and baselines are all YAML
written by people, and every problem in them is reported the same way: one
:class:`SourceError` naming the file, the line, the field and what was
expected.  This module reads a file into plain data plus a map from each
field's path to its line (:class:`Marks`), and turns JSON Schema errors into
such messages.

Whatever the bytes, reading ends in data or in one SourceError: text that is
not UTF-8 or holds control characters, YAML that nests without end or
expands aliases into millions of values (a "billion laughs" file is 1.6 kB),
numbers Python will not build.  The schemas' "integer" means an integer, not
1.0 (JSON Schema's own rule), since a float where an integer belongs breaks
what reads it later.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    import jsonschema

# Bounds no file written by a person comes near: the catalogue, the largest
# file, builds 1,927 values and nests 3 deep; the grid nests 7 deep.
MAX_DEPTH = 32            # mappings and lists inside each other
MAX_VALUES = 20_000       # values one document builds, aliases expanded

# libyaml's parser when PyYAML has it (Debian's and PyPI's wheels do): the same
# nodes and marks, five times faster than the pure-Python one.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# A flow collection opened more than MAX_DEPTH times in a row.
_DEEP_FLOW = re.compile(r"[\[{](?:\s*[\[{]){%d}" % MAX_DEPTH)
# Characters that are not text: C0 and C1 controls (tab, line feed and
# carriage return aside, and NEL, which YAML reads as a line break), lone
# surrogates, and the non-characters U+FFFE and U+FFFF.
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f"
                       "\ud800-\udfff\ufffe\uffff]")


class SourceError(Exception):
    """An input file that cannot be used, located at file, line and field."""

    def __init__(self, path, line: int | None, field_: str, message: str):
        # A message quotes what the author wrote, which may be a whole
        # paragraph: the terminal gets the start of it.
        message = _short(message, 400)
        self.path, self.line, self.field, self.message = str(path), line, field_, message
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {field_}: {message}" if field_ else f"{where}: {message}")


class SourceErrors(SourceError):
    """Every error found in one file, in line order.  It reads as its first
    error (and says how many more there are); `errors` holds them all, for
    `tcpconf lint`."""

    def __init__(self, errors: list[SourceError]):
        self.errors = sorted(errors, key=lambda e: (e.line or 0, e.field))
        first = self.errors[0]
        super().__init__(first.path, first.line, first.field, first.message)
        more = len(self.errors) - 1
        if more:
            self.args = (f"{self.args[0]} (and {more} more "
                         f"{'error' if more == 1 else 'errors'} in this file: tcpconf lint "
                         f"lists them)",)


class ErrorList:
    """Gathers a file's errors part by part, so that one error does not hide
    the next: each part is checked `with errors.checking():`, then `check()`
    raises them together."""

    def __init__(self):
        self.errors: list[SourceError] = []

    @contextmanager
    def checking(self):
        try:
            yield
        except SourceErrors as exc:
            self.errors += exc.errors
        except SourceError as exc:
            self.errors.append(exc)

    def check(self) -> None:
        if self.errors:
            raise SourceErrors(self.errors)


class Marks(dict):
    """Maps a field path such as ('steps', 3, 'expect') to its 1-based line."""

    def line(self, path) -> int | None:
        path = tuple(path)
        while path not in self and path:
            path = path[:-1]
        return self.get(path)


class _Builder:
    """Builds one document's data from its YAML nodes, recording each field's
    line, within MAX_DEPTH and MAX_VALUES.  An alias is the same node met
    again: it is built again, and counts again, so an alias bomb runs out of
    values long before it runs out of memory, and an alias inside itself runs
    out of depth."""

    def __init__(self, marks: Marks):
        self.marks, self.values = marks, 0
        self.constructor = yaml.constructor.SafeConstructor()

    def build(self, node, path=()):
        line = node.start_mark.line + 1
        self.values += 1
        if self.values > MAX_VALUES:
            raise SourceError("", line, dotted(path), f"more than {MAX_VALUES:,} values (YAML "
                                                      f"aliases expanding without end?)")
        if len(path) > MAX_DEPTH:
            raise SourceError("", line, dotted(path), f"nested more than {MAX_DEPTH} deep "
                                                      f"(a YAML alias inside itself?)")
        self.marks[path] = line
        if isinstance(node, yaml.CollectionNode) and node.tag not in _PLAIN_TAGS:
            # A tag asks for a Python object or a set; a case is plain data.
            raise SourceError("", line, dotted(path), f"a YAML tag ({_short(node.tag)}) "
                                                      f"where plain data is expected")
        if isinstance(node, yaml.MappingNode):
            result = {}
            for key_node, value_node in node.value:
                key = self.scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) \
                    else None
                if not isinstance(key, (str, int)) or isinstance(key, bool):
                    raise SourceError("", key_node.start_mark.line + 1, dotted(path),
                                      "a field name must be text")
                if key in result:
                    raise SourceError("", key_node.start_mark.line + 1, dotted(path + (key,)),
                                      "this field is given twice")
                result[key] = self.build(value_node, path + (key,))
                # An error about a field points at its key, where the author wrote
                # the name, even when the value starts on a later line.
                self.marks[path + (key,)] = key_node.start_mark.line + 1
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        return self.scalar(node, path)

    def scalar(self, node, path):
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise SourceError("", node.start_mark.line + 1, dotted(path),
                              f"not valid YAML: {exc.problem}") from None
        except (ValueError, OverflowError, TypeError) as exc:
            # int() past Python's 4,300 digits, a date that does not exist, ...
            raise SourceError("", node.start_mark.line + 1, dotted(path),
                              f"cannot be read as a value: {_short(str(exc))}") from None


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def shown(value) -> str:
    """A value as an error message quotes it: its repr, cut short."""
    return _short(repr(value))


def decode(path, data: bytes) -> str:
    """The file's text, or a SourceError at the line of the first byte or
    character that is not text."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise SourceError(path, line, "", f"not UTF-8 text: byte 0x{data[exc.start]:02x} "
                                          f"({exc.reason})") from None
    return checked_text(path, text)


def checked_text(path, text: str) -> str:
    bad = _NOT_TEXT.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise SourceError(path, line, "", f"a control character U+{ord(bad.group()):04X} "
                                          f"where text is expected")
    # YAML's reader recurses once per bracket: refuse a deep flow collection
    # before it runs out of stack (the builder bounds the other kinds).
    deep = _DEEP_FLOW.search(text)
    if deep:
        line = text.count("\n", 0, deep.start()) + 1
        raise SourceError(path, line, "", f"nested more than {MAX_DEPTH} deep")
    return text


def load_yaml_documents(path, text: str | None = None):
    """Yield (data, marks) for each YAML document of a file."""
    text = decode(path, path.read_bytes()) if text is None else checked_text(path, text)
    try:
        nodes = list(yaml.compose_all(text, Loader=_LOADER))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "cannot be read"
        raise SourceError(path, mark.line + 1 if mark else None, "",
                          f"not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise SourceError(path, None, "", f"not valid YAML: {exc}") from None
    except RecursionError:
        raise SourceError(path, None, "", "not valid YAML: nested too deeply") from None
    for node in nodes:
        if node is None:
            continue
        marks = Marks()
        try:
            data = _Builder(marks).build(node)
        except SourceError as exc:
            raise SourceError(path, exc.line, exc.field, exc.message) from None
        yield data, marks


def dotted(path) -> str:
    """('steps', 3, 'expect') as an author reads it: steps[3].expect."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def schema_message(error: jsonschema.ValidationError) -> tuple[tuple, str]:
    """Turn a jsonschema error into (field path, 'expected ...; got ...')."""
    path = tuple(error.absolute_path)
    v = error.validator
    if "propertyNames" in error.absolute_schema_path:
        # jsonschema checks each key as an instance of its own: error.instance is the key.
        allowed = error.schema.get("enum")
        if allowed:
            return path + (error.instance,), (f"unknown field {error.instance!r}; expected "
                                              f"one of {', '.join(allowed)}")
        return path + (error.instance,), f"unknown field {error.instance!r}"
    if v == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(known))
        return path + (extra[0],), (f"unknown field {extra[0]!r}; expected one of "
                                    f"{', '.join(known)}")
    if v == "required":
        missing = error.message.split("'")[1]
        return path, f"the field {missing!r} is missing"
    description = error.schema.get("description")
    if description is None and error.parent is not None:
        description = error.parent.schema.get("description")
    expected = description or error.message
    return path, f"expected {expected}; got {shown(error.instance)}"


def _is_integer(checker, instance) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


class Schema:
    """A JSON Schema (2020-12, except that 1.0 is not an integer) that input
    files are checked against.

    Checking a file that passed before is skipped: a document that met the
    same schema once meets it again, and the check (with jsonschema's
    import, which only a check needs) is most of a cold start's reading.  A
    digest of the schema and of the document, with CHECK_VERSION, names an
    empty file in the user's cache directory once the document passed; a
    document with errors is checked every time, so its errors are never
    cached.  Without a writable cache directory every document is checked."""

    # Raise when what a check accepts changes without the schema changing
    # (the integer rule above, jsonschema's major version).
    CHECK_VERSION = "1"

    def __init__(self, schema: dict):
        self.schema = schema
        self._digest = hashlib.sha256(f"{self.CHECK_VERSION}:{schema!r}".encode()).digest()
        self._validator = None

    def iter_errors(self, data):
        if self._validator is None:
            import jsonschema
            checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer",
                                                                             _is_integer)
            extended = jsonschema.validators.extend(jsonschema.Draft202012Validator,
                                                    type_checker=checker)
            self._validator = extended(self.schema)
        return self._validator.iter_errors(data)

    def pass_mark(self, data) -> Path:
        """The cache file whose existence says that `data` passed."""
        key = hashlib.sha256(self._digest + repr(data).encode()).hexdigest()
        return _cache_dir() / key


def _cache_dir() -> Path:
    return cache_dir() / "schema-passed"


def cache_dir() -> Path:
    """The user's cache directory for the suite (XDG's, else ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tcpconf"


def cached(name: str, inputs: list[Path], build):
    """build()'s result, or what it returned before from the same `inputs`
    (files whose place and bytes decide it: the data and the code that reads it),
    pickled in the cache directory.  Only a pickle the user owns and no one
    else may write is read; any trouble with the cache means build() again."""
    digest = hashlib.sha256()
    for path in inputs:
        # Where it is too: what is built may name it (a catalogue its file).
        digest.update(os.fsencode(path.resolve()) + b"\0" + path.read_bytes())
    where = cache_dir() / f"{name}-{digest.hexdigest()[:32]}.pickle"
    try:
        info = where.stat()
        if info.st_uid == os.geteuid() and not info.st_mode & 0o022:
            with open(where, "rb") as cache:
                return pickle.load(cache)
    except Exception:          # missing, unreadable, from another version: build it
        pass
    value = build()
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        for old in where.parent.glob(f"{name}-*.pickle"):
            old.unlink()
        partial = where.with_suffix(f".{os.getpid()}.tmp")
        with open(partial, "wb") as cache:
            pickle.dump(value, cache, protocol=pickle.HIGHEST_PROTOCOL)
        os.chmod(partial, 0o600)
        os.replace(partial, where)
    except OSError:
        pass
    return value


def validator(schema: dict | Path) -> Schema:
    """The validator every input file's schema is checked with; a path is a
    schema file of the package's, read with libyaml where PyYAML has it."""
    if isinstance(schema, Path):
        schema = yaml.load(schema.read_text(encoding="utf-8"), Loader=_LOADER)
    return Schema(schema)


def schema_errors(data, marks: Marks, path, validator: Schema) -> dict[tuple, SourceError]:
    """The schema's violations by field path, one per field, each naming the
    field the author has to change (where two concern one field, the one that
    points deeper into it).  Errors inside anyOf branches stay in
    error.context; the anyOf itself is described by its schema's description."""
    passed = validator.pass_mark(data)
    if passed.exists():
        return {}
    found: dict[tuple, SourceError] = {}
    for error in sorted(validator.iter_errors(data), key=lambda e: -len(e.absolute_path)):
        field_path, message = schema_message(error)
        if field_path not in found:
            found[field_path] = SourceError(path, marks.line(field_path), dotted(field_path),
                                            message)
    if not found:
        _mark_passed(passed)
    return found


# Marks a cache directory keeps at most: past it, they are all removed (a
# user's cases are a few hundred documents; the project's tests write more).
MAX_PASS_MARKS = 4096


def _mark_passed(mark: Path) -> None:
    try:
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.touch()
        with os.scandir(mark.parent) as entries:
            if sum(1 for _ in entries) > MAX_PASS_MARKS:
                for entry in os.scandir(mark.parent):
                    os.unlink(entry.path)
    except OSError:
        pass            # no cache: the next run checks again


def check_schema(data, marks: Marks, path, validator: Schema) -> None:
    """Raise every violation of the schema (schema_errors)."""
    found = schema_errors(data, marks, path, validator)
    if found:
        raise SourceErrors(list(found.values()))
