"""The earlier attempts of a job, as the monitor shows them (``A``): a restart or a retry after
a worker died moved each one aside with its status, times, error, outputs and console, so the
latest attempt's console and plot start clean."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text

#: Console lines shown per earlier attempt (its last ones).
TAIL = 12


def attempts_text(job: str, attempts: Sequence[Mapping[str, Any]],
                  kept_from: int | None = None) -> Text:
    """Oldest first, numbered as people count them; the attempt the job's result is kept
    from (a cancelled restart) is marked."""
    text = Text()
    if not attempts:
        text.append(f"{job} has run once: no earlier attempts.\n", style="dim")
        return text
    if kept_from:
        text.append(f"{job}'s result is attempt {kept_from}'s (a later restart was cancelled)."
                    "\n\n", style="bold")
    for number, attempt in enumerate(attempts, start=1):
        style = "green" if attempt.get("status") in ("succeeded", "cached") else "yellow"
        text.append(f"attempt {number}: {attempt.get('status')}", style=f"bold {style}")
        text.append(f"  ended by {attempt.get('ended_by') or '-'}", style="dim")
        times = [str(attempt.get(k) or "")[11:19] for k in ("started", "finished")]
        text.append(f"  {times[0] or '-'} → {times[1] or '-'}\n", style="dim")
        if attempt.get("error"):
            text.append(f"  {str(attempt['error']).splitlines()[-1]}\n", style="red")
        for port, digest in (attempt.get("outputs") or {}).items():
            text.append(f"  output {port} → {str(digest)[:16]}\n")
        console = list(attempt.get("console") or [])
        if len(console) > TAIL:
            text.append(f"  … {len(console) - TAIL} earlier lines\n", style="dim")
        for line in console[-TAIL:]:
            text.append(f"  │ {line}\n")
        lines = sum(len(points) for graph in (attempt.get("graphs") or {}).values()
                    for points in graph.values())
        if lines:
            text.append(f"  plotted {lines} points\n", style="dim")
        text.append("\n")
    return text
