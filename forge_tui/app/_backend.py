"""Where projects come from: a Forge server (HTTP + relay rooms) or an in-process hub."""

from __future__ import annotations

from typing import Protocol

from forge_ops.schema import ProjectDoc
from forge_tui.app._link import DocumentLink, MemoryHub, RemoteLink


class BackendError(Exception):
    """A failure to show on the error screen; ``refused`` is True for a rejected token."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


class Backend(Protocol):
    label: str
    user: str

    async def list_projects(self) -> list[str]: ...

    async def create_project(self, name: str) -> None: ...

    def link(self, project: str, branch: str = "main") -> DocumentLink: ...


def check_project_name(name: str) -> str | None:
    """An error message for a name that cannot be a room path segment, else None."""
    if not name:
        return "enter a project name"
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    if not set(name) <= allowed or name.startswith("."):
        return "use letters, digits, '-', '_' and '.' only (it becomes part of a URL)"
    return None


class MemoryBackend:
    """Projects held in this process (offline use, tests of the UI)."""

    def __init__(self, hub: MemoryHub | None = None, user: str = "me") -> None:
        self.hub = hub or MemoryHub()
        self.user = user
        self.label = "in-process"

    async def list_projects(self) -> list[str]:
        return sorted({room.split("/")[0] for room in self.hub.rooms})

    async def create_project(self, name: str) -> None:
        error = check_project_name(name)
        if error:
            raise BackendError(error)
        doc = self.hub.room_doc(f"{name}/main")
        if not ProjectDoc(doc).name:
            ProjectDoc.create(name, doc)

    def link(self, project: str, branch: str = "main") -> DocumentLink:
        return self.hub.link(f"{project}/{branch}")


class ServerBackend:
    """A Forge server: ``GET /api/projects`` lists, rooms ``/sync/{project}/{branch}`` edit."""

    def __init__(self, server: str, token: str | None, user: str) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.user = user
        self.label = self.server

    async def list_projects(self) -> list[str]:
        from forge_tui.api_client import ApiClient, ApiError

        try:
            data = await ApiClient(self.server, self.token, timeout=5).request("GET", "projects")
        except ApiError as exc:
            if exc.status in (401, 403):
                raise BackendError(
                    f"{self.server} refused the token ({exc.status}: {exc.message}); "
                    "log in again with `forge login URL TOKEN` or pass --token",
                    refused=True,
                ) from exc
            if exc.status:
                raise BackendError(
                    f"{self.server}/api/projects answered {exc.status}; is this a Forge server?"
                ) from exc
            raise BackendError(exc.message) from exc
        return sorted(p["name"] for p in data.get("projects", []) if isinstance(p, dict))

    async def create_project(self, name: str) -> None:
        """A project is its main room; creating it writes ``meta`` there."""
        error = check_project_name(name)
        if error:
            raise BackendError(error)
        from forge_server.client import SyncError, open_document

        try:
            async with open_document(self.server, self.token, f"{name}/main") as client:
                if not ProjectDoc(client.doc).name:
                    ProjectDoc.create(name, client.doc)
        except SyncError as exc:
            raise BackendError(str(exc)) from exc

    def link(self, project: str, branch: str = "main") -> DocumentLink:
        return RemoteLink(self.server, self.token, f"{project}/{branch}")
