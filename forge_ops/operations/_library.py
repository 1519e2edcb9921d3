"""The built-in operations, as the code texts users see and edit in a project.

Each lives in ``library/<file>.py``; it is read as text (never imported by Forge) and copied into
a project's ``operations`` map with ``builtin: true``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

__all__ = ["BUILTIN_FILES", "BuiltinOperation", "builtin_code", "builtin_operations"]

#: Operation name → file under ``library/``, in the order a palette lists them.
BUILTIN_FILES = {
    "Input": "input.py",
    "Output": "output.py",
    "LoadArtifact": "load_artifact.py",
    "DownloadCIFAR10": "download_cifar10.py",
    "SyntheticImages": "synthetic_images.py",
    "NormalizeData": "normalize_data.py",
    "SplitData": "split_data.py",
    "Train": "train.py",
    "Test": "testing.py",
    "Predict": "predict.py",
}


@dataclass(frozen=True)
class BuiltinOperation:
    name: str
    code: str


def builtin_code(name: str) -> str:
    """The code of the built-in operation ``name`` (KeyError names the ones that exist)."""
    if name not in BUILTIN_FILES:
        raise KeyError(f"no built-in operation {name!r}; built-ins are "
                       f"{', '.join(BUILTIN_FILES)}")
    return resources.files(__package__).joinpath("library", BUILTIN_FILES[name]).read_text(
        encoding="utf-8"
    )


def builtin_operations() -> list[BuiltinOperation]:
    """Every built-in operation, in palette order."""
    return [BuiltinOperation(name, builtin_code(name)) for name in BUILTIN_FILES]
