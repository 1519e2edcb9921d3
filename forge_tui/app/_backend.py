"""Where projects come from: a Forge server (HTTP + relay rooms) or an in-process hub."""

from __future__ import annotations

from typing import Protocol

from forge_ops.schema import ProjectDoc
from forge_server.auth import InvalidName, validate_project_name
from forge_tui.api_client import ApiClient, ApiError
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
    """An error message for a name the server would refuse (its rule, one copy), else None."""
    if not name:
        return "enter a project name"
    try:
        validate_project_name(name)
    except InvalidName as exc:
        return str(exc)
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
        try:
            data = await ApiClient(self.server, self.token, timeout=5).request("GET", "projects")
        except ApiError as exc:
            raise self._refusal(exc, "projects") from exc
        return sorted(p["name"] for p in data.get("projects", []) if isinstance(p, dict))

    async def create_project(self, name: str) -> None:
        """``POST /api/projects``; a project that exists already is fine (it opens)."""
        error = check_project_name(name)
        if error:
            raise BackendError(error)
        try:
            await ApiClient(self.server, self.token).request(
                "POST", "projects", {"name": name, "exist_ok": True}
            )
        except ApiError as exc:
            if exc.status in (400, 403, 409):  # the server's reason says what to change
                raise BackendError(exc.message) from exc
            raise self._refusal(exc, "projects") from exc

    def _refusal(self, exc: ApiError, path: str) -> BackendError:
        """The error screen's message for a failed ``/api/{path}`` call."""
        if exc.status in (401, 403):
            return BackendError(
                f"{self.server} refused the token ({exc.status}: {exc.message}); "
                "log in again with `forge login URL TOKEN` or pass --token",
                refused=True,
            )
        if exc.status:
            return BackendError(
                f"{self.server}/api/{path} answered {exc.status}; is this a Forge server?"
            )
        return BackendError(exc.message)

    def link(self, project: str, branch: str = "main") -> DocumentLink:
        return RemoteLink(self.server, self.token, f"{project}/{branch}")
