"""YAML files with line marks: the loader every input file of the suite shares.

Case files, the grid, the requirements catalogue and baselines are all YAML
written by people, and every problem in them is reported the same way: one
:class:`SourceError` naming the file, the line, the field and what was
expected.  This module reads a file into plain data plus a map from each
field's path to its line (:class:`Marks`), and turns JSON Schema errors into
such messages.
"""

from __future__ import annotations

import jsonschema
import yaml


class SourceError(Exception):
    """An input file that cannot be used, located at file, line and field."""

    def __init__(self, path, line: int | None, field_: str, message: str):
        self.path, self.line, self.field, self.message = str(path), line, field_, message
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {field_}: {message}" if field_ else f"{where}: {message}")


class Marks(dict):
    """Maps a field path such as ('steps', 3, 'expect') to its 1-based line."""

    def line(self, path) -> int | None:
        path = tuple(path)
        while path not in self and path:
            path = path[:-1]
        return self.get(path)


def _construct(node, path, marks, constructor):
    marks[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result = {}
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int)):
                raise SourceError("", key_node.start_mark.line + 1, dotted(path),
                                  f"a field name must be text, got {key!r}")
            if key in result:
                raise SourceError("", key_node.start_mark.line + 1, dotted(path + (key,)),
                                  "this field is given twice")
            result[key] = _construct(value_node, path + (key,), marks, constructor)
            # An error about a field points at its key, where the author wrote
            # the name, even when the value starts on a later line.
            marks[path + (key,)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, path + (i,), marks, constructor)
                for i, item in enumerate(node.value)]
    return constructor.construct_object(node, deep=True)


def load_yaml_documents(path, text: str | None = None):
    """Yield (data, marks) for each YAML document of a file."""
    text = path.read_text(encoding="utf-8") if text is None else text
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "cannot be read"
        raise SourceError(path, mark.line + 1 if mark else None, "",
                          f"not valid YAML: {problem}") from None
    for node in nodes:
        if node is None:
            continue
        marks = Marks()
        try:
            data = _construct(node, (), marks, yaml.constructor.SafeConstructor())
        except SourceError as exc:
            raise SourceError(path, exc.line, exc.field, exc.message) from None
        except yaml.constructor.ConstructorError as exc:
            mark = exc.problem_mark
            raise SourceError(path, mark.line + 1 if mark else None, "",
                              f"not valid YAML: {exc.problem}") from None
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
    return path, f"expected {expected}; got {error.instance!r}"


def check_schema(data, marks: Marks, path, validator: jsonschema.Validator) -> None:
    """Raise a SourceError for the schema violation that points deepest into
    the file: it names the field the author has to change.  Errors inside anyOf
    branches stay in error.context; the anyOf itself is described by its
    schema's description."""
    errors = sorted(validator.iter_errors(data), key=lambda e: -len(e.absolute_path))
    if errors:
        field_path, message = schema_message(errors[0])
        raise SourceError(path, marks.line(field_path), dotted(field_path), message)
