"""The request shapes as data for the strategies: where each constrained value sits.

The pydantic models of :mod:`lifecycle.wire.shapes` give the structure (their
fields, which are required, which hold nested structures); botocore's
SageMaker service model, whose shape names the models' classes carry, names
the shape of each member, and :data:`lifecycle.wire.shapes.CONSTRAINTS`
holds that shape's constraints as the wire layer checks them. A
:class:`Slot` is one value of one concrete payload with all three.

Rule identities (what :mod:`lifecycle.testing.strategies` says a request
breaks, and what a test compares with the engine) read:

- ``<shape>:<kind>`` for a constraint of a shape (``InferenceExperimentName:pattern``,
  ``ModelVariantConfigList:max-length``, ``Timestamp:min-value``);
- ``<Structure>.<member>:not-null`` for a required member;
- ``<Structure>:unknown-member`` for a member a structure does not have;
- ``<kind>:type`` for a value of the wrong JSON type (``integer:type``);
- the engine's own rule id for every other rule (``single-promote``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, get_args

from pydantic import BaseModel

from lifecycle.wire import shapes
from lifecycle.wire._constraints import TIMESTAMP_MAX, TIMESTAMP_MIN, Enum, Int, Size, Str

__all__ = ["MapKey", "Slot", "constraint_kinds", "location", "slots", "structure_of"]

Spec = Str | Enum | Int | Size


@functools.cache
def _service_shapes() -> dict[str, Any]:
    import botocore.loaders

    model = botocore.loaders.Loader().load_service_model("sagemaker", "service-2")
    return dict(model["shapes"])


@dataclass(frozen=True, slots=True)
class MapKey:
    """A map entry in a location: the entry whose key is ``key``."""

    key: str


Loc = tuple[str | int | MapKey, ...]


@dataclass(frozen=True, slots=True)
class Slot:
    """One value in a payload: where it is, its service-model shape and what constrains it.

    ``kind`` is the service model's type (``string``, ``integer``,
    ``timestamp``, ``list``, ``map``, ``structure``); ``part`` is ``key`` or
    ``value`` for the two sides of a map entry.
    """

    loc: Loc
    shape: str
    kind: str
    spec: Spec | None
    required: bool
    model: type[BaseModel] | None = None
    owner: str | None = None  # the structure holding the member
    member: str | None = None


def structure_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field holds, directly or as list items."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = structure_of(arg)
        if found is not None:
            return found
    return None


def slots(model: type[BaseModel], payload: Any, loc: Loc = ()) -> Iterator[Slot]:
    """Every value in ``payload`` (a request or a structure of ``model``), outermost first."""
    yield Slot(loc, model.__name__, "structure", None, True, model)
    if not isinstance(payload, dict):
        return
    members = _service_shapes()[model.__name__]["members"]
    if set(members) != set(model.model_fields):  # the wire shapes follow the service model
        raise AssertionError(
            f"{model.__name__}: fields {sorted(model.model_fields)} are not the service model's {sorted(members)}"
        )
    for name, field in model.model_fields.items():
        if name not in payload:
            continue
        shape_name = members[name]["shape"]
        yield from _member(
            shape_name,
            payload[name],
            (*loc, name),
            field.is_required(),
            field.annotation,
            model.__name__,
            name,
        )


def _member(
    shape_name: str, value: Any, loc: Loc, required: bool, annotation: Any, owner: str, member: str
) -> Iterator[Slot]:
    shape = _service_shapes()[shape_name]
    kind = shape["type"]
    spec = shapes.CONSTRAINTS.get(shape_name)
    if kind == "structure":
        nested = structure_of(annotation)
        assert nested is not None, shape_name
        _, *rest = slots(nested, value, loc)
        yield Slot(loc, shape_name, kind, None, required, nested, owner, member)
        yield from rest
        return
    yield Slot(loc, shape_name, kind, spec, required, None, owner, member)
    if kind == "list" and isinstance(value, list):
        item_shape = shape["member"]["shape"]
        nested = structure_of(annotation)
        for i, item in enumerate(value):
            if nested is not None:
                yield from slots(nested, item, (*loc, i))
            else:
                yield Slot(
                    (*loc, i),
                    item_shape,
                    _service_shapes()[item_shape]["type"],
                    shapes.CONSTRAINTS.get(item_shape),
                    True,
                )
    elif kind == "map" and isinstance(value, dict):
        key_shape, value_shape = shape["key"]["shape"], shape["value"]["shape"]
        for key in value:
            yield Slot(
                (*loc, MapKey(key), "key"),
                key_shape,
                "string",
                shapes.CONSTRAINTS.get(key_shape),
                True,
            )
            yield Slot(
                (*loc, MapKey(key), "value"),
                value_shape,
                "string",
                shapes.CONSTRAINTS.get(value_shape),
                True,
            )


def constraint_kinds(slot: Slot) -> tuple[str, ...]:
    """The constraint kinds a value of ``slot`` can break (the wire layer's rule ids)."""
    spec = slot.spec
    if slot.kind == "timestamp":
        return ("min-value", "max-value")
    if isinstance(spec, Enum):
        return ("enum",)
    if isinstance(spec, Int):
        return ("min-value", "max-value")
    out: list[str] = []
    if isinstance(spec, Str | Size):
        if (spec.min or 0) > 0:
            out.append("min-length")
        if spec.max is not None:
            out.append("max-length")
    if isinstance(spec, Str) and spec.check is not None:
        out.append("pattern")
    return tuple(out)


def location(loc: Loc, *, unknown: str | None = None) -> str:
    """A location as the engine's messages and ``ValidationError.field`` give it:
    members in lowerCamelCase, list items ``<n>.member`` (1-based), map entries
    ``'<key>'.key`` / ``'<key>'.value``; an unknown member keeps its own spelling."""
    parts: list[str] = []
    for seg in loc:
        if isinstance(seg, int):
            parts += [str(seg + 1), "member"]
        elif isinstance(seg, MapKey):
            parts.append(f"'{seg.key}'")
        else:
            parts.append(seg[:1].lower() + seg[1:])
    if unknown is not None:
        parts.append(unknown)
    return ".".join(parts)


#: the lowest and highest timestamps the wire layer takes
TIMESTAMP_RANGE = (TIMESTAMP_MIN, TIMESTAMP_MAX)
