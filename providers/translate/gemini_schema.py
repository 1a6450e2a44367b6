"""JSON Schema → the OpenAPI-3.0 `Schema` subset Vertex Gemini accepts in `responseSchema` and function `parameters`.

Vertex answers 400 for keys outside its subset, so the conversion keeps what it understands and drops the rest:

- dropped: `additionalProperties`, `$schema`, `$id`, `$comment`, `strict`, `examples`, `uniqueItems`, `not`,
  `patternProperties`, `exclusiveMinimum`/`exclusiveMaximum`, `if`/`then`/`else`, and `format`s other than the few
  Gemini knows (`date-time`, `date`, `time`, `enum`, `float`, `double`, `int32`, `int64`).
- rewritten: local `$ref`s into `$defs`/`definitions` are inlined (a recursive reference is refused: the subset has
  no way to say it); `type: [T, "null"]` becomes `type: T, nullable: true`; `oneOf` becomes `anyOf` (looser);
  `allOf` is merged into its parent; `const` becomes a one-value `enum`; type names are upper-cased (`STRING`).
- added: `propertyOrdering` in schema order, because Gemini otherwise orders generated keys alphabetically while
  OpenAI's structured outputs follow the schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from providers.translate.errors import TranslationError
from providers.translate.openai_request import JsonObject

_COPIED = frozenset(
    {
        "title",
        "description",
        "nullable",
        "default",
        "example",
        "enum",
        "required",
        "propertyOrdering",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
    }
)
_FORMATS = frozenset({"date-time", "date", "time", "enum", "float", "double", "int32", "int64"})
_MAX_DEPTH = 64


class _Converter:
    def __init__(self, definitions: JsonObject, param: str) -> None:
        self.definitions = definitions
        self.param = param
        self._rules: dict[str, Callable[[JsonObject, Any, tuple[str, ...]], None]] = {
            "type": self._type,
            "format": self._format,
            "properties": self._properties,
            "items": self._items,
            "anyOf": self._any_of,
            "oneOf": self._any_of,
            "allOf": self._all_of,
            "const": self._const,
        }

    def convert(self, node: Any, seen: tuple[str, ...]) -> JsonObject:
        if not isinstance(node, dict):
            raise TranslationError("Every subschema must be a JSON object.", param=self.param)
        if len(seen) > _MAX_DEPTH:
            raise TranslationError("The schema nests too deeply for Gemini.", param=self.param)
        node, seen = self._resolve(node, seen)
        out: JsonObject = {}
        for key, value in node.items():
            rule = self._rules.get(key)
            if rule is not None:
                rule(out, value, seen)
            elif key in _COPIED:
                out[key] = value
        return out

    def _resolve(self, node: JsonObject, seen: tuple[str, ...]) -> tuple[JsonObject, tuple[str, ...]]:
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return node, (*seen, "")
        name = ref.removeprefix("#/$defs/").removeprefix("#/definitions/")
        if name not in self.definitions or name == ref:
            raise TranslationError(
                f"Only local '#/$defs/...' references can be inlined; cannot resolve {ref}.", param=self.param
            )
        if name in seen:
            raise TranslationError(f"Gemini schemas cannot be recursive ('{ref}' refers to itself).", param=self.param)
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return {**self.definitions[name], **siblings}, (*seen, name)

    def _type(self, out: JsonObject, value: Any, seen: tuple[str, ...]) -> None:
        types = [value] if isinstance(value, str) else list(value)
        named = [kind for kind in types if kind != "null"]
        if len(named) < len(types):
            out["nullable"] = True
        if len(named) == 1 or not named:
            out["type"] = (named or ["null"])[0].upper()
        else:
            out["anyOf"] = [{"type": kind.upper()} for kind in named]

    def _format(self, out: JsonObject, value: Any, seen: tuple[str, ...]) -> None:
        if value in _FORMATS:
            out["format"] = value

    def _properties(self, out: JsonObject, value: Any, seen: tuple[str, ...]) -> None:
        if not isinstance(value, dict):
            raise TranslationError("'properties' must map names to schemas.", param=self.param)
        out["properties"] = {name: self.convert(schema, seen) for name, schema in value.items()}
        out.setdefault("propertyOrdering", list(value))

    def _items(self, out: JsonObject, value: Any, seen: tuple[str, ...]) -> None:
        if isinstance(value, dict):
            out["items"] = self.convert(value, seen)

    def _any_of(self, out: JsonObject, value: Any, seen: tuple[str, ...]) -> None:
        if not isinstance(value, list):
            raise TranslationError("'anyOf' and 'oneOf' must be arrays of schemas.", param=self.param)
        out["anyOf"] = [self.convert(schema, seen) for schema in value]

    def _all_of(self, out: JsonObject, value: Any, seen: tuple[str, ...]) -> None:
        for schema in value if isinstance(value, list) else [value]:
            for key, converted in self.convert(schema, seen).items():
                out.setdefault(key, converted)

    def _const(self, out: JsonObject, value: Any, seen: tuple[str, ...]) -> None:
        if isinstance(value, str):
            out["enum"] = [value]


def to_gemini_schema(schema: JsonObject, param: str) -> JsonObject:
    """The Vertex `Schema` for a JSON Schema; `param` names the request field in errors."""
    definitions = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    return _Converter(definitions, param).convert(schema, ())
