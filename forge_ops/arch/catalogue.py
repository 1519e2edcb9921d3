"""The layer catalogue: every ``torch.nn`` layer class with its constructor arguments.

Built once per process from ``inspect.signature`` and the annotations of each class's
``__init__`` (cached). Each argument becomes a typed attribute with its default and the
description from the class's "Args:" docs. Arguments that take a layer (annotated with an
``nn.Module`` class) or a sequence of layers (``nn.Sequential``'s ``*args``) have the types
``"layer"`` and ``"layers"``.
"""

from __future__ import annotations

import inspect
import re
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Any

# Arguments that place a layer, not describe it.
SKIPPED_ARGUMENTS = frozenset({"device", "dtype"})
# Public torch.nn classes that are containers or bases, not layers one puts in a graph.
NOT_LAYERS = frozenset(
    {"Module", "Container", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"}
)


@dataclass(frozen=True)
class AttributeSpec:
    """One constructor argument of a layer."""

    name: str
    type: str  # readable annotation, or "layer" / "layers"
    default: Any  # a plain JSON value; meaningless when required
    required: bool
    doc: str = ""
    variadic: bool = False  # *args: the value is a list spread positionally
    keyword_only: bool = False


@dataclass(frozen=True)
class LayerSpec:
    """A layer type: its name, first doc line and attributes in constructor order."""

    name: str
    doc: str
    attributes: tuple[AttributeSpec, ...] = field(default=())
    custom: bool = False
    # A custom layer without its own constructor: the torch.nn class whose arguments it takes
    # (``class LayerNorm2d(nn.LayerNorm)``); its attributes come from the catalogue.
    base: str | None = None

    def attribute(self, name: str) -> AttributeSpec | None:
        for attr in self.attributes:
            if attr.name == name:
                return attr
        return None


def _type_text(annotation: Any) -> str:
    """A short readable type: ``int | tuple[int, int]``, ``Literal['zeros', 'reflect']``."""
    from torch import nn

    if annotation is inspect.Parameter.empty:
        return "any"
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type):
        if issubclass(annotation, nn.Module):
            return "layer"
        return annotation.__name__
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " | ".join(_type_text(a) for a in args)
    if origin is typing.Literal:
        return "Literal[" + ", ".join(repr(a) for a in args) + "]"
    text = str(annotation).replace("typing.", "")
    return re.sub(r"\b(?:torch\.nn\.modules\.\w+\.|torch\.)", "", text)


def _plain_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain_default(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str | list):
        return value
    # A callable default such as Transformer's activation=F.relu: torch also accepts its name.
    return getattr(value, "__name__", repr(value))


_ARG_LINE = re.compile(r"^(\s+)(\*{0,2}\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_SECTIONS = {"Shape", "Attributes", "Examples", "Example", "Note", "Inputs", "Outputs"}


def _argument_docs(doc: str) -> dict[str, tuple[str, str]]:
    """From a Google-style "Args:" section: {name: (type text, description)}."""
    found: dict[str, tuple[str, str]] = {}
    in_args = False
    current: str | None = None
    indent = 0
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped in {"Args:", "Arguments:", "Parameters:"}:
            in_args, current = True, None
            continue
        if not in_args:
            continue
        if not stripped or stripped.rstrip(":") in _SECTIONS:
            in_args = stripped.rstrip(":") not in _SECTIONS and in_args
            current = None if not stripped else current
            continue
        match = _ARG_LINE.match(line)
        if match and (current is None or len(match.group(1)) <= indent):
            current, indent = match.group(2).lstrip("*"), len(match.group(1))
            found.setdefault(current, ((match.group(3) or "").strip(), match.group(4).strip()))
        elif current is not None and current in found:
            kind, text = found[current]
            found[current] = (kind, f"{text} {stripped}".strip())
    return found


def _first_line(doc: str | None) -> str:
    """The first sentence of a docstring's first paragraph (signature lines skipped)."""
    paragraph: list[str] = []
    for line in (doc or "").strip().splitlines():
        text = line.strip()
        if text.startswith("__init__("):
            continue
        if not text:
            if paragraph:
                break
            continue
        paragraph.append(text)
    joined = " ".join(paragraph)
    end = re.search(r"(?<=[a-z0-9`)\]])\.(\s|$)", joined)
    return joined[: end.start() + 1] if end else joined


def _doc_signature(cls: type) -> inspect.Signature | None:
    """The signature in a docstring's ``__init__(...)`` line (RNN classes take ``*args``)."""
    import ast

    for line in (cls.__doc__ or "").strip().splitlines()[:3]:
        text = line.strip()
        if text.startswith("__init__("):
            try:
                tree = ast.parse(f"def {text}: pass")
            except SyntaxError:
                return None
            func = tree.body[0]
            assert isinstance(func, ast.FunctionDef)
            args = func.args
            defaults = [None] * (len(args.args) - len(args.defaults)) + list(args.defaults)
            params = [
                inspect.Parameter(
                    a.arg,
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    default=inspect.Parameter.empty if d is None else ast.literal_eval(d),
                )
                for a, d in zip(args.args, defaults, strict=True)
            ]
            return inspect.Signature(params)
    return None


def _text_of_doc_type(text: str) -> str:
    """Normalise a type written in docs ("int, optional", "bool") to annotation style."""
    parts = [p.strip() for p in text.replace(" or ", ",").split(",")]
    kinds = [p for p in parts if p and p != "optional"]
    return " | ".join(kinds) if kinds else "any"


def layer_spec(cls: type) -> LayerSpec:
    """The spec of one ``nn.Module`` class (also used for imported third-party layers)."""
    signature = inspect.signature(cls.__init__)  # type: ignore[misc]
    params = list(signature.parameters.values())[1:]
    if [p.kind for p in params] == [
        inspect.Parameter.VAR_POSITIONAL,
        inspect.Parameter.VAR_KEYWORD,
    ]:
        documented = _doc_signature(cls)
        params = list(documented.parameters.values()) if documented else params
    try:
        hints = typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    except Exception:  # unresolvable forward references: fall back to raw annotations
        hints = {}
    arg_docs = _argument_docs(cls.__doc__ or "")
    attributes = []
    for param in params:
        name = param.name
        if name in SKIPPED_ARGUMENTS or name.startswith("_") or param.kind is param.VAR_KEYWORD:
            continue
        variadic = param.kind is param.VAR_POSITIONAL
        annotation = hints.get(name, param.annotation)
        doc_type, doc_text = arg_docs.get(name, ("", ""))
        kind = _type_text(annotation)
        if kind == "any" and doc_type:
            kind = _text_of_doc_type(doc_type)
        elif kind == "any" and param.default not in (None, inspect.Parameter.empty):
            kind = type(param.default).__name__
        if variadic and (cls.__name__ == "Sequential" or kind == "layer"):
            kind = "layers"
        if typing.get_origin(annotation) is not None and any(
            _type_text(a) == "layer" for a in typing.get_args(annotation)
        ):
            kind = kind if "|" in kind else "layers"
        required = param.default is param.empty and not variadic
        default = [] if variadic else (None if required else _plain_default(param.default))
        attributes.append(
            AttributeSpec(
                name=name,
                type=kind,
                default=default,
                required=required,
                doc=doc_text,
                variadic=variadic,
                keyword_only=param.kind is param.KEYWORD_ONLY,
            )
        )
    return LayerSpec(name=cls.__name__, doc=_first_line(cls.__doc__), attributes=tuple(attributes))


@cache
def catalogue() -> dict[str, LayerSpec]:
    """Every public ``torch.nn`` layer class by name (computed once per process)."""
    from torch import nn

    specs: dict[str, LayerSpec] = {}
    for name in sorted(nn.modules.__all__):
        cls = getattr(nn, name, None)
        if not isinstance(cls, type) or not issubclass(cls, nn.Module) or name in NOT_LAYERS:
            continue
        specs[name] = layer_spec(cls)
    return specs
