"""Is the CIFAR-10 download available? A short, bounded check before the demo picks a pipeline."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DownloadCheck", "check_cifar10_download", "cifar10_defaults"]


@dataclass(frozen=True)
class DownloadCheck:
    available: bool
    reason: str


def cifar10_defaults() -> tuple[str, Path]:
    """The DownloadCIFAR10 operation's default URL and cached archive path (read from its code)."""
    from forge_ops.operations import builtin_code, parse_interface

    interface = parse_interface(builtin_code("DownloadCIFAR10"))
    defaults = {attribute.name: attribute.default for attribute in interface.attributes}
    archive = Path(str(defaults["cache_dir"])).expanduser() / "cifar-10-python.tar.gz"
    return str(defaults["url"]), archive


def check_cifar10_download(timeout: float = 3.0) -> DownloadCheck:
    """Available when the archive is cached or its URL answers a HEAD request within ``timeout``."""
    url, archive = cifar10_defaults()
    if archive.is_file():
        return DownloadCheck(True, f"the archive is cached in {archive}")
    request = urllib.request.Request(url, method="HEAD")  # noqa: S310 - a fixed https URL
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return DownloadCheck(True, f"{url} answered {response.status}")
    except urllib.error.HTTPError as exc:
        return DownloadCheck(False, f"{url} answered {exc.code} {exc.reason}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return DownloadCheck(False, f"cannot reach {url}: {reason}")
