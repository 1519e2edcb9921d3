"""The shape of the code base, checked: modules stay readable in one sitting, and a package's
private modules (``_name.py``) are imported only from inside that package, so each package's
``__init__`` is its public face."""

from __future__ import annotations

import ast
from pathlib import Path

from forge_ops.graph_order import all_cycles

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("forge_ops", "forge_server", "forge_tui")
MAX_LINES = 500


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _dotted(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(path: Path) -> list[tuple[int, str]]:
    """Absolute names ``path`` imports, modules or names in them (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _dotted(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``base.name`` is the submodule when there is one, else it resolves to ``base``.
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


def test_no_module_is_over_the_line_limit() -> None:
    long = {str(p.relative_to(ROOT)): n for p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these along their seams (limit {MAX_LINES} lines): {long}"


def test_private_modules_are_imported_only_inside_their_package() -> None:
    crossings: set[str] = set()
    for path in _modules():
        importer = _dotted(path)
        for line, name in _imported(path):
            parts = name.split(".")
            if parts[0] not in PACKAGES:
                continue
            for i, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    owner = ".".join(parts[:i])
                    if importer != owner and not importer.startswith(owner + "."):
                        private = ".".join(parts[: i + 1])
                        crossings.add(f"{path.relative_to(ROOT)}:{line} imports {private}")
                    break
    listing = "\n".join(sorted(crossings))
    assert not crossings, f"import the package's public name instead:\n{listing}"


def test_no_import_cycles_not_even_deferred_or_typing_only_ones() -> None:
    # Imports inside functions and under TYPE_CHECKING count: a cycle they keep alive still
    # ties two modules together, and one of them cannot be read or loaded on its own.
    known = {_dotted(path): path for path in _modules()}

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    deps = {module: {target for _, name in _imported(path)
                     if (target := resolve(name)) is not None and target != module}
            for module, path in known.items()}
    cycles = all_cycles(deps)
    assert not cycles, "break these import cycles:\n" + "\n".join(
        " -> ".join(cycle) for cycle in cycles)
