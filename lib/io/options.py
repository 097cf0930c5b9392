"""Typed option sets: one frozen dataclass per concern (training, inference, the app) whose fields carry
their default, a one-line help and their valid values.

Values arrive as strings (HTTP requests, ``--conf``) or as JSON values; :meth:`Options.from_mapping`
converts them by the field's declared type and the dataclass checks them, so a bad value is refused
with a ``ValueError`` naming the option before anything runs.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Demo(Options):
...     ERROR = "demo option {}"
...     steps: int = option(10, "how many", low=1, high=100)
>>> Demo.from_mapping({"steps": "20", "other": "ignored"}).steps
20
>>> Demo.from_mapping({"steps": "0"})
Traceback (most recent call last):
ValueError: demo option steps: 0 is outside [1, 100]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from dataclasses import Field, field, fields
from typing import Any, ClassVar, Self


def option(
    default: Any,
    help: str,
    choices: tuple = (),
    low: float | None = None,
    high: float | None = None,
    server_only: bool = False,
) -> Any:
    """A dataclass field carrying its help, its choices or its closed range [low, high];
    ``server_only`` marks options the CLI does not offer."""
    meta = {"help": help, "choices": choices, "low": low, "high": high, "server_only": server_only}
    return field(default=default, metadata=meta)


def parse_bool(value: Any) -> bool:
    """``True``/``"true"``/``"1"``/``"yes"``/``"on"`` -> True; ``False``/``"false"``/``"0"``/``"no"``/
    ``"off"`` -> False; anything else raises ``ValueError``."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", "none", ""):
        return False
    raise ValueError(f"expected a boolean, got {value!r}")


def parse_int(value: Any) -> int:
    """An integer from ``3``, ``"3"`` or ``"3.0"``; booleans and fractions raise ``ValueError``."""
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {value!r}")
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"expected an integer, got {value!r}")
    return int(number)


def parse_float(value: Any) -> float:
    """A finite number; booleans, NaN and infinities raise ``ValueError``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


PARSERS = {"bool": parse_bool, "int": parse_int, "float": parse_float, "str": lambda v: str(v).strip()}


class Options:
    """Base of the option dataclasses (decorate the subclass with ``@dataclass(frozen=True)`` and
    declare its fields with :func:`option`). ``ERROR`` is the message prefix, ``{}`` the option."""

    ERROR: ClassVar[str] = "option {}"

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            value, meta = getattr(self, f.name), f.metadata
            if value is None:
                continue
            if meta.get("choices") and value not in meta["choices"]:
                raise ValueError(f"{self.ERROR.format(f.name)}: {value!r}; valid: {list(meta['choices'])}")
            if meta.get("low") is not None and not meta["low"] <= value <= meta["high"]:
                raise ValueError(
                    f"{self.ERROR.format(f.name)}: {value!r} is outside [{meta['low']}, {meta['high']}]"
                )

    @classmethod
    def field_type(cls, name: str) -> str:
        """The declared type of option ``name`` without ``| None``: "bool", "int", "float" or "str"."""
        return str(cls.__dataclass_fields__[name].type).split(" |")[0]  # type: ignore[attr-defined]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Self:
        """The options in ``values`` converted by their declared types (a list means its first entry;
        a string option with choices is lower-cased); keys that are not options are ignored."""
        parsed = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name not in values:
                continue
            raw = values[f.name]
            raw = raw[0] if isinstance(raw, list) and raw else raw
            try:
                value = PARSERS[cls.field_type(f.name)](raw)
            except (TypeError, ValueError) as e:
                raise ValueError(f"{cls.ERROR.format(f.name)}: {e}") from None
            parsed[f.name] = value.lower() if f.metadata.get("choices") and isinstance(value, str) else value
        return cls(**parsed)

    @classmethod
    def info(cls) -> dict[str, Any]:
        """The options as MONAI Label's ``/info`` shows them: a list (default first) where there are
        choices, else the default value."""
        out: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            choices = f.metadata["choices"]
            out[f.name] = [f.default, *(c for c in choices if c != f.default)] if choices else f.default
        return out

    @classmethod
    def cli_fields(cls) -> list[Field]:
        """The options a command line offers: all but the ``server_only`` ones."""
        return [f for f in fields(cls) if not f.metadata["server_only"]]  # type: ignore[arg-type]

    @classmethod
    def add_arguments(
        cls, parser: argparse.ArgumentParser, title: str, aliases: Mapping[str, str] | None = None
    ) -> None:
        """One ``--name-with-dashes`` argument per :meth:`cli_fields` option (plus ``aliases``
        {option: "--other-spelling"}), with its default, choices and help."""
        group = parser.add_argument_group(title)
        aliases = aliases or {}
        for f in cls.cli_fields():
            kind = cls.field_type(f.name)
            names = [f"--{f.name.replace('_', '-')}", *([aliases[f.name]] if f.name in aliases else [])]
            group.add_argument(
                *names,
                dest=f.name,
                type=PARSERS[kind],
                default=f.default,
                choices=f.metadata["choices"] or None,
                metavar=None if f.metadata["choices"] else kind.upper(),
                help=f"{f.metadata['help']} (default: {f.default})".replace("%", "%%"),  # argparse formats
            )

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> Self:
        """The options parsed by a parser that :meth:`add_arguments` set up (``ValueError`` if invalid)."""
        return cls(**{f.name: getattr(args, f.name) for f in cls.cli_fields()})
