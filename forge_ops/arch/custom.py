"""Custom layers: ``nn.Module`` classes whose code text lives in the project document.

Outside a job the code is only *read* (with ``ast``): the class's constructor arguments become
the layer's attributes. Inside a job, :func:`load_custom_layers` executes the code to get the
class (user code runs only there).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from forge_ops.arch._model import ArchitectureError
from forge_ops.arch.catalogue import AttributeSpec, LayerSpec

if TYPE_CHECKING:
    from torch import nn

_MODULE_BASES = {"Module", "nn.Module", "torch.nn.Module"}


class CustomLayerError(ArchitectureError):
    """A custom layer's code does not define a usable ``nn.Module`` class."""


def _literal(node: ast.expr | None) -> tuple[bool, Any]:
    if node is None:
        return False, None
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return True, ast.unparse(node)  # not a literal (e.g. nn.ReLU()): show its source
    if isinstance(value, tuple):
        value = list(value)
    return True, value


def _layer_classes(tree: ast.Module) -> list[ast.ClassDef]:
    """Classes deriving from nn.Module: directly, from another torch.nn class (``class
    LayerNorm2d(nn.LayerNorm)``) or from another such class in the same code."""
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    found: dict[str, ast.ClassDef] = {}
    changed = True
    while changed:
        changed = False
        for node in classes:
            bases = [ast.unparse(base) for base in node.bases]
            if node.name not in found and any(
                b in _MODULE_BASES or b.startswith(("nn.", "torch.nn.")) or b in found
                for b in bases
            ):
                found[node.name] = node
                changed = True
    return [node for node in classes if node.name in found]


def _torch_base(cls: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> str | None:
    """For a class without ``__init__``: the torch.nn class whose constructor it inherits."""
    for base in (ast.unparse(b) for b in cls.bases):
        if base in classes:
            inner = classes[base]
            if _init_of(inner) is None:
                return _torch_base(inner, classes)
            return None
        if base.startswith(("nn.", "torch.nn.")) and base not in _MODULE_BASES:
            return base.rsplit(".", 1)[1]
    return None


def _init_of(cls: ast.ClassDef) -> ast.FunctionDef | None:
    return next(
        (n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None
    )


def parse_custom_layer(code: str, name: str | None = None) -> LayerSpec:
    """Read a custom layer's attributes from its code without running it.

    ``name`` picks the class when the code defines several ``nn.Module`` subclasses;
    by default the code must define exactly one (or one named like ``name``).
    """
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise CustomLayerError(
            f"custom layer {name or ''}: syntax error at line {exc.lineno}: {exc.msg}".replace(
                "layer :", "layer:"
            )
        ) from exc
    classes = _layer_classes(tree)
    if name is not None:
        chosen = [c for c in classes if c.name == name]
        if not chosen:  # a subclass of a class imported from a package (checked when run)
            chosen = [
                c for c in tree.body if isinstance(c, ast.ClassDef) and c.name == name and c.bases
            ]
    else:
        chosen = classes if len(classes) == 1 else []
    if not chosen:
        found = ", ".join(c.name for c in classes) or "none"
        wanted = f"a class named {name!r}" if name else "exactly one class"
        raise CustomLayerError(
            f"custom layer code must define {wanted} deriving from nn.Module (found: {found})"
        )
    cls = chosen[0]
    by_name = {c.name: c for c in classes}
    owner = cls
    while _init_of(owner) is None:  # a constructor inherited from a class in the same code
        parents = [by_name[b] for b in (ast.unparse(x) for x in owner.bases) if b in by_name]
        if not parents:
            break
        owner = parents[0]
    init = _init_of(owner)
    attributes: list[AttributeSpec] = []
    if init is not None:
        args = init.args
        positional = [*args.posonlyargs, *args.args][1:]  # drop self
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(
            args.defaults
        )
        pairs = [(a, d, False) for a, d in zip(positional, defaults, strict=True)]
        pairs += [(a, d, True) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
        for arg, default, keyword_only in pairs:
            has_default, value = _literal(default)
            annotation = ast.unparse(arg.annotation) if arg.annotation else "any"
            attributes.append(
                AttributeSpec(
                    name=arg.arg,
                    type=annotation,
                    default=value if has_default else None,
                    required=not has_default,
                    keyword_only=keyword_only,
                )
            )
        if args.vararg is not None:
            attributes.append(
                AttributeSpec(args.vararg.arg, "list", [], required=False, variadic=True)
            )
    doc = ast.get_docstring(cls) or ""
    return LayerSpec(
        name=cls.name,
        doc=doc.strip().splitlines()[0] if doc.strip() else "",
        attributes=tuple(attributes),
        custom=True,
        base=_torch_base(owner, by_name) if init is None else None,
    )


def custom_layer_specs(custom_layers: Mapping[str, str]) -> dict[str, LayerSpec]:
    """Specs of every custom layer, keyed by class name (code read with ``ast`` only)."""
    return {name: parse_custom_layer(code, name) for name, code in custom_layers.items()}


def load_custom_layers(custom_layers: Mapping[str, str]) -> dict[str, type[nn.Module]]:
    """Execute custom layer code and return the classes. Call only inside a job."""
    import torch
    from torch import nn

    classes: dict[str, type[nn.Module]] = {}
    for name, code in custom_layers.items():
        parse_custom_layer(code, name)  # clear error before running anything
        namespace: dict[str, Any] = {
            "__name__": f"forge_custom_layer_{name}",
            "torch": torch,
            "nn": nn,
            "F": torch.nn.functional,
        }
        try:
            exec(compile(code, f"<custom layer {name}>", "exec"), namespace)  # noqa: S102
        except Exception as exc:
            raise CustomLayerError(
                f"custom layer {name!r} failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        cls = namespace.get(name)
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise CustomLayerError(f"custom layer code does not define class {name!r}")
        classes[name] = cls
    return classes
