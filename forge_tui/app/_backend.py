"""Where projects come from: a Forge server (HTTP + relay rooms) or an in-process hub."""

from __future__ import annotations

import getpass
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
    """Who one is to others: the account on a server with accounts, else one's chosen name."""
    display: str | None
    """A display name shown beside the account, or None."""

    async def identify(self) -> None:
        """Learn ``user`` (and ``display``) from the server, when it has accounts."""
        ...

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


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in this environment
        return "me"


class MemoryBackend:
    """Projects held in this process (offline use, tests of the UI)."""

    def __init__(self, hub: MemoryHub | None = None, user: str = "me") -> None:
        self.hub = hub or MemoryHub()
        self.user = user
        self.display: str | None = None
        self.label = "in-process"

    async def identify(self) -> None:
        """In-process projects have no accounts: ``user`` is the name given."""

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

    def __init__(self, server: str, token: str | None, name: str | None = None) -> None:
        """``name``: one's chosen name; on a server with accounts it is shown beside the
        account (the relay binds presence to the account), without accounts it is the name."""
        self.server = server.rstrip("/")
        self.token = token
        self.name = name
        self.user = name or _login_name()  # until the server says which account this is
        self.display: str | None = None
        self.label = self.server
        self._identified = False

    async def identify(self) -> None:
        """``GET /api/auth/whoami`` once: others see the account, so it is what this client
        shows too. A server without accounts (404) leaves the chosen name; an unreachable one
        is asked again at the next call."""
        if self._identified:
            return
        try:
            data = await ApiClient(self.server, self.token, timeout=5).request(
                "GET", "auth/whoami"
            )
        except ApiError as exc:
            self._identified = exc.status == 404  # --no-auth: no accounts to learn
            return
        account = data.get("user")
        if isinstance(account, str) and account:
            self.user = account
            self.display = self.name if self.name and self.name != account else None
            self._identified = True

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
