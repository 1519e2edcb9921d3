"""The Forge terminal client (Textual): projects, diagram and code editors, presence."""

from forge_tui.app._backend import Backend as Backend
from forge_tui.app._backend import BackendError as BackendError
from forge_tui.app._backend import MemoryBackend as MemoryBackend
from forge_tui.app._backend import ServerBackend as ServerBackend
from forge_tui.app._backend import check_project_name as check_project_name
from forge_tui.app._link import DocumentLink as DocumentLink
from forge_tui.app._link import LinkState as LinkState
from forge_tui.app._link import MemoryHub as MemoryHub
from forge_tui.app.app import ForgeApp as ForgeApp

__all__ = [
    "Backend",
    "BackendError",
    "DocumentLink",
    "ForgeApp",
    "LinkState",
    "MemoryBackend",
    "MemoryHub",
    "ServerBackend",
    "check_project_name",
]
