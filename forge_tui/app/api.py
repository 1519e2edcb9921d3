"""The TUI's view of the server's HTTP API: one project's executions, artifacts and history.

Every call answers parsed JSON or raises :class:`ApiError` (from :mod:`forge_tui.api_client`)
whose ``message`` is the server's own ``error`` text (or says the server cannot be reached),
ready to show in the UI. Validation problems of a refused run travel in ``ApiError.problems``.
"""

from __future__ import annotations

from typing import Any

from forge_tui.api_client import ApiClient, ApiError, quote_ref
from forge_tui.api_client import quote as _quote

__all__ = ["ApiError", "ForgeApi", "api_for"]


class ForgeApi:
    """``/api/projects/{project}/…`` of one server, as one user (bearer token or none)."""

    def __init__(self, server: str, token: str | None, project: str) -> None:
        self.client = ApiClient(server, token)
        self.server = self.client.server
        self.token = token
        self.project = project

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``method`` on ``/api/projects/{project}/{path}``; the JSON answer or ApiError."""
        return await self.client.request(
            method, f"projects/{_quote(self.project)}/{path}", body, query=query
        )

    # ----- executions ---------------------------------------------------------------------

    async def run(
        self,
        pipeline: str,
        *,
        branch: str = "main",
        executor: str | None = None,
        no_cache: bool = False,
        gpus: float | None = None,
    ) -> dict[str, Any]:
        """Start a run: ``executor`` None is the server's default, ``no_cache`` recomputes
        every job, ``gpus`` is for each job that runs a network (None: the nodes' settings)."""
        body: dict[str, Any] = {"pipeline": pipeline, "branch": branch, "no_cache": no_cache}
        if executor:
            body["executor"] = executor
        if gpus is not None:
            body["gpus"] = gpus
        return await self.call("POST", "runs", body=body)

    async def executions(self, branch: str = "main") -> list[dict[str, Any]]:
        answer = await self.call("GET", "executions", query={"branch": branch})
        return list(answer.get("executions") or [])

    async def execution(self, execution: str) -> dict[str, Any]:
        return await self.call("GET", f"executions/{_quote(execution)}")

    async def execution_anywhere(self, execution: str) -> dict[str, Any]:
        """The record of an execution of any project this user may read (its ``project`` says
        which): a cached job's result may come from a run in another project."""
        return await self.client.request("GET", f"executions/{_quote(execution)}")

    async def cancel(self, execution: str, job: str | None = None) -> dict[str, Any]:
        path = f"executions/{_quote(execution)}"
        path += f"/jobs/{_quote(job)}/cancel" if job else "/cancel"
        return await self.call("POST", path)

    async def restart(
        self, execution: str, job: str, executor: str | None = None
    ) -> dict[str, Any]:
        """Restart a job and its downstream, on ``executor`` or else the one it ran on."""
        body = {"executor": executor} if executor else None
        return await self.call(
            "POST", f"executions/{_quote(execution)}/jobs/{_quote(job)}/restart", body=body
        )

    async def execution_artifact(self, execution: str, digest: str) -> dict[str, Any]:
        """Summary of any output or image of an execution, by its hash."""
        return await self.call("GET", f"executions/{_quote(execution)}/artifacts/{_quote(digest)}")

    async def image(self, execution: str, job: str, name: str, max_side: int = 96) -> Any:
        """Pixels of an image a job showed: a uint8 H×W×C numpy array (C = 1, 3 or 4)."""
        import numpy

        path = "projects/" + _quote(self.project, "executions", execution, "jobs", job, "images",
                                    name)
        query = {"format": "raw", "max_side": str(max_side)}
        pixels, headers = await self.client.request_bytes("GET", path, query=query)
        try:
            shape = tuple(int(n) for n in headers.get("X-Forge-Shape", "").split(","))
            return numpy.frombuffer(pixels, dtype=numpy.uint8).reshape(shape)
        except ValueError:
            raise ApiError("the server sent an image without a valid X-Forge-Shape") from None

    async def artifacts(self, branch: str = "main") -> list[dict[str, Any]]:
        """Named artifacts as records ``{name, hash, kind, shape, …}``."""
        answer = await self.call("GET", "artifacts", query={"branch": branch})
        artifacts = answer.get("artifacts") or {}
        if isinstance(artifacts, dict):
            return [{"name": name, **record} for name, record in artifacts.items()]
        return list(artifacts)

    async def artifact(self, name: str, branch: str = "main") -> dict[str, Any]:
        return await self.call("GET", f"artifacts/{_quote(name)}", query={"branch": branch})

    # ----- history ------------------------------------------------------------------------

    async def log(self, branch: str = "main", limit: int = 200) -> list[dict[str, Any]]:
        answer = await self.call("GET", "log", query={"branch": branch, "limit": str(limit)})
        return list(answer.get("commits") or [])

    async def commit(self, ref: str) -> dict[str, Any]:
        return await self.call("GET", f"commits/{quote_ref(ref)}")

    async def diff(self, a: str, b: str) -> dict[str, Any]:
        """``{a, b, changes}``: what changes from commit ``a`` to commit ``b``."""
        return await self.call("GET", "diff", query={"a": a, "b": b})

    async def branches(self) -> list[dict[str, Any]]:
        return list((await self.call("GET", "branches")).get("branches") or [])

    async def tags(self) -> list[dict[str, Any]]:
        return list((await self.call("GET", "tags")).get("tags") or [])

    async def create_branch(self, name: str, source: str | None = None) -> dict[str, Any]:
        body = {"name": name} | ({"from": source} if source else {})
        return dict((await self.call("POST", "branches", body=body))["branch"])

    async def tag(self, name: str, commit: str | None = None) -> dict[str, Any]:
        body = {"name": name} | ({"commit": commit} if commit else {})
        return dict((await self.call("POST", "tags", body=body))["tag"])

    async def merge(self, branch: str, into: str = "main") -> dict[str, Any]:
        answer = await self.call("POST", "merge", body={"branch": branch, "into": into})
        return dict(answer["commit"])

    async def revert(self, commit: str, branch: str = "main") -> dict[str, Any]:
        answer = await self.call("POST", "revert", body={"commit": commit, "branch": branch})
        return dict(answer["commit"])

    async def commit_now(self, branch: str = "main", message: str | None = None) -> dict[str, Any]:
        body = {"branch": branch} | ({"message": message} if message else {})
        answer = await self.call("POST", "commit", body=body)
        return dict(answer["commit"] or {})


def api_for(backend: object, project: str) -> ForgeApi | None:
    """The API of the app's backend when it is a server (None for an in-process hub)."""
    server = getattr(backend, "server", None)
    if not isinstance(server, str):
        return None
    return ForgeApi(server, getattr(backend, "token", None), project)
