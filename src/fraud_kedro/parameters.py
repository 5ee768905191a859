"""One way to declare a ``conf/`` parameter section: a validated, frozen dataclass.

A node that declares ``params: SplitParams`` for the input ``params:split`` gets a ``SplitParams``
instance: Kedro (1.7+) builds it from the merged parameters (``conf/<env>``, ``--params``) before
the run starts, and a bad value stops the run before any node, naming the key::

    Parameter 'split': ... train_dayz  Unexpected keyword argument

The classes are pydantic dataclasses: types, bounds (``Annotated[int, Field(ge=1)]``) and nested
sections are checked by pydantic, unknown keys are errors, and cross-field rules live in
``__post_init__``. They stay ordinary dataclasses for everything else (``dataclasses.asdict``,
``dataclasses.replace``, attribute access). :func:`flatten` is how the run's MLflow parameters
keep their dotted names (``split.delay_days``): see ``hooks.TypedParamsLoggingHooks``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, ConfigDict, Field
from pydantic.dataclasses import dataclass as _pydantic_dataclass

T = TypeVar("T")

# Value types of the sections. Numbers are strict (``true`` or ``"4"`` is not a number; an integer
# is a valid float), floats finite.
Count = Annotated[int, Field(strict=True, ge=1)]
NonNegativeInt = Annotated[int, Field(strict=True, ge=0)]
NonNegative = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
Share = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
Hour = Annotated[float, Field(strict=True, ge=0, le=24, allow_inf_nan=False)]
# numbers kept as written (7 stays 7): for keys that nodes also read one by one (``split.delay_days``),
# so that the run's MLflow parameter has one value
PositiveNumber = Annotated[int, Field(strict=True, gt=0)] | Positive
NonNegativeNumber = Annotated[int, Field(strict=True, ge=0)] | NonNegative


def _ordered(pair: tuple[float, float]) -> tuple[float, float]:
    if pair[0] > pair[1]:
        raise ValueError(f"must have low <= high, got {list(pair)}")
    return pair


#: ``[low, high]`` with ``low <= high``
Range = Annotated[tuple[NonNegative, NonNegative], AfterValidator(_ordered)]
HourRange = Annotated[tuple[Hour, Hour], AfterValidator(_ordered)]

#: unknown keys are errors
CONFIG = ConfigDict(extra="forbid")


def parameters(cls: type[T]) -> type[T]:
    """Class decorator: ``cls`` as a frozen, validated parameter dataclass."""
    return _pydantic_dataclass(cls, frozen=True, config=CONFIG)  # type: ignore[return-value]


def flatten(value: Any, prefix: str, sep: str = ".") -> dict[str, Any]:
    """A parameter dataclass (or mapping) as ``{"prefix.key.sub": leaf}``; a leaf as ``{prefix: v}``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}{sep}{key}", sep))
        return flat
    if isinstance(value, tuple):
        value = list(value)  # as the YAML wrote it
    return {prefix: value}


def build(cls: Callable[..., T], raw: Mapping[str, Any] | T | None) -> T:
    """``cls`` from a mapping (or None: the defaults); an instance is returned as is.

    For callers outside Kedro (the scoring service reading a model's feature spec, notebooks).
    """
    if isinstance(raw, cls):  # type: ignore[arg-type]
        return raw  # type: ignore[return-value]
    return cls(**dict(raw or {}))
