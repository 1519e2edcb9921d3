"""Version history: automatic commits, log, show, diff, branches, merge, tags, revert."""

from ._engine import MAIN, History, HistoryConfig
from ._errors import Conflict, HistoryError, NotFound
from ._routes import HISTORY, history_setup
from ._store import Branch, Commit, HistoryStore, Tag

__all__ = [
    "HISTORY",
    "MAIN",
    "Branch",
    "Commit",
    "Conflict",
    "History",
    "HistoryConfig",
    "HistoryError",
    "HistoryStore",
    "NotFound",
    "Tag",
    "history_setup",
]
