"""The shape of the code base, checked: modules stay readable in one sitting, and a package's
private modules (``_name.py``) are imported only from inside that package, so each package's
``__init__`` is its public face."""

from __future__ import annotations

import ast
from pathlib import Path

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
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
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
            found.append((node.lineno, base))
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
