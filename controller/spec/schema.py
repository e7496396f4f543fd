"""The published JSON Schema of paas.yaml, generated from the models.

``python -m controller.spec.schema > schemas/paas.schema.json`` regenerates the
checked-in file; a unit test fails when the two drift apart. Editors use the
schema for completion and early errors; the parser remains the authority
(it also checks what a schema cannot say: dependency cycles, references).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from controller.spec.models import Manifest

DIALECT = "https://json-schema.org/draft/2020-12/schema"


class _ManifestSchema(GenerateJsonSchema):
    """pydantic's generator, with maps keyed by names written as ``propertyNames``."""

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        result: JsonSchemaValue = {"type": "object"}
        keys = schema.get("keys_schema")
        values = schema.get("values_schema")
        if keys is not None:
            names = {k: v for k, v in self.generate_inner(keys).items() if k != "type"}
            if names:
                result["propertyNames"] = names
        if values is not None:
            result["additionalProperties"] = self.generate_inner(values)
        return result

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def generate(self, schema: Any, mode: Any = "validation") -> JsonSchemaValue:
        result = super().generate(schema, mode=mode)
        for definition in result.get("$defs", {}).values():
            definition.pop("title", None)
        return {"$schema": DIALECT, **result}


def manifest_schema() -> dict[str, Any]:
    return Manifest.model_json_schema(schema_generator=_ManifestSchema)


def render_schema() -> str:
    """The schema as checked in: stable key order, two-space indent, trailing newline."""
    return json.dumps(manifest_schema(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    sys.stdout.write(render_schema())


if __name__ == "__main__":
    main()
