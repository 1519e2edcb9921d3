"""The Ray executor's side of live feedback: the direct link's listener and the relay actor.

Workers send feedback over a TCP link to the executor's listener (``_feedback_link``) or, if
they cannot reach it, push it to the executor's FeedbackRelay actor. One feedback thread serves
the link and collects the relay every ``RELAY_POLL_SECONDS``, delivering each attempt's events
to the task handle that follows it (by attempt key).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, Protocol

from ._feedback_link import FeedbackListener, make_route
from ._task import TaskEvent
from ._worker import FLUSH_SECONDS

_log = logging.getLogger(__name__)
#: How often the executor collects the relay actor while workers can send over the direct link
#: (only a worker that cannot reach the link pushes there).
RELAY_POLL_SECONDS = 1.0
#: How long an ended attempt's last frames may take to arrive before its outcome is reported
#: without them (they were sent before the attempt returned, so normally they are in).
LAST_FRAMES_SECONDS = 10.0
#: How long a collection waits for the relay actor while it is down (or being recreated).
RELAY_DOWN_WAIT = 0.3
#: Custom Ray resources (JSON, e.g. ``{"feedback": 0.01}``) that place the relay actor on the
#: nodes that have them; without it, or while no live node has them, it goes to the head node.
RELAY_RESOURCES_ENV = "FORGE_FEEDBACK_RELAY_RESOURCES"


def relay_placement(configured: bool = True) -> dict[str, Any]:
    """``.options()`` that place the relay actor where losing a worker node cannot take it
    down: on nodes with the resources of ``$FORGE_FEEDBACK_RELAY_RESOURCES`` if a live one has
    them (and ``configured``: not after such a node was lost, which Ray may not know yet), else
    on the head node (soft: any node while the head cannot take it)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [node for node in ray.nodes() if node.get("Alive")]
    wanted = os.environ.get(RELAY_RESOURCES_ENV)
    if wanted and configured:
        try:
            resources = {str(k): float(v) for k, v in json.loads(wanted).items()}
        except (ValueError, TypeError, AttributeError):
            raise ValueError(f"{RELAY_RESOURCES_ENV} must be a JSON object of Ray resources, "
                             f'such as {{"feedback": 0.01}}; it is {wanted!r}') from None
        if any(all(node.get("Resources", {}).get(name, 0) >= amount
                   for name, amount in resources.items()) for node in nodes):
            return {"resources": resources}
    for node in nodes:
        if "node:__internal_head__" in node.get("Resources", {}):
            return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node["NodeID"],
                                                                          soft=True)}
    return {}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"


def _listener_host(cluster: str | None) -> str:
    """Where the feedback link listens: loopback for a runtime this executor started
    (``cluster`` None), else the address the cluster's nodes can reach this process at: the
    one Ray knows this node by or, for a Ray Client (``ray://``, this process is no node of the
    cluster), the local address that faces the cluster's head."""
    import ray

    if cluster is None:
        return "127.0.0.1"
    if cluster.startswith("ray://"):
        host, _, port = cluster.removeprefix("ray://").rpartition(":")
        return _address_facing(host.strip("[]"), int(port) if port.isdigit() else 10001)
    return str(ray.util.get_node_ip_address())


def _address_facing(host: str, port: int) -> str:
    """This machine's address on the route to ``host`` (a UDP "connect" sends nothing)."""
    import ray

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][0]
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((host, port))
            return str(probe.getsockname()[0])
    except OSError:  # no route known: the address Ray would pick
        return str(ray.util.get_node_ip_address())


class FeedbackRelay:
    """A Ray actor holding feedback that running tasks push until the executor collects it.

    Tasks are plain Ray tasks (a streaming generator task costs about a millisecond more per
    job); only jobs that run longer than a feedback interval and print, plot or show images,
    from a worker that cannot reach the executor's direct link (or when the executor was made
    without it), send anything here. Events are kept per attempt key, in push order.
    """

    def __init__(self) -> None:
        self._events: dict[str, list[TaskEvent]] = {}

    def push(self, key: str, events: list[TaskEvent]) -> None:
        self._events.setdefault(key, []).extend(events)

    def take(self, keys: list[str] | None = None) -> dict[str, list[TaskEvent]]:
        """Remove and return the events of ``keys`` (all of them with None)."""
        if keys is None:
            taken, self._events = self._events, {}
            return taken
        return {key: self._events.pop(key) for key in keys if key in self._events}


class Follower(Protocol):
    """A task handle whose current attempt's feedback the hub delivers."""

    @property
    def key(self) -> str: ...

    def deliver(self, events: list[TaskEvent]) -> None: ...


class FeedbackHub:
    """Receives the feedback of every attempt in flight and hands it to its task handle."""

    def __init__(self) -> None:
        #: The relay actor, and the direct link's listener (None without one); both while
        #: started.
        self.relay: Any = None
        self.listener: FeedbackListener | None = None
        #: What tasks are told about where their feedback goes (``make_route``).
        self.route = ""
        #: Held while feedback is delivered, so an attempt's outcome can wait for its last
        #: frames and report them first.
        self.lock = threading.Lock()
        #: Frames received per attempt key (the last seq); signalled on each.
        self._received: dict[str, int] = {}
        self._frame_arrived = threading.Condition(self.lock)
        self._relayed_noted = False
        self._following: dict[str, Follower] = {}
        self._relay_name = ""
        #: While the relay is unreachable: since when (monotonic); its outage is logged once.
        self._relay_down_since: float | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def started(self) -> bool:
        return self.relay is not None

    def start(self, *, direct: bool, cluster: str | None) -> None:
        """Start the relay actor, the link's listener and the feedback thread, once Ray is
        initialised (``cluster``: its address, None for a runtime this executor started). Without
        ``direct`` there is no listener: all feedback goes through the relay actor, as from a
        worker that cannot reach the link."""
        relay_name = self._relay_name = f"forge-feedback-{uuid.uuid4().hex}"
        self.relay = self._new_relay()
        if direct:
            self.listener = FeedbackListener(_listener_host(cluster), self._deliver_frame)
        self.route = make_route(relay_name, self.listener)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name="forge-ray-feedback")
        self._thread.start()

    def stop(self) -> None:
        """Tell the feedback thread to stop (``close`` waits for it)."""
        self._stopping.set()
        if self.listener is not None:
            self.listener.wake()

    def close(self) -> None:
        """After ``stop``: wait for the feedback thread, close the link, end the relay."""
        import ray

        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        if self.relay is not None:
            if ray.is_initialized():
                ray.kill(self.relay)
            self.relay = None

    # -- attempts ----------------------------------------------------------------------------
    def follow(self, handle: Follower) -> None:
        """Deliver what arrives for ``handle.key`` to ``handle`` (before it is submitted)."""
        # No lock: the attempt is not submitted yet, so nothing can be delivered for its key
        # (and one dict store is atomic); the poller holds the lock across a relay round trip.
        self._following[handle.key] = handle

    def unfollow(self, handle: Follower) -> None:
        with self.lock:
            self._following.pop(handle.key, None)
            self._received.pop(handle.key, None)

    @contextmanager
    def attempt_ended(self, key: str, sent: int, pushed: bool, pid: Any, no_link: Any
                      ) -> Iterator[None]:
        """Around reporting an ended attempt's outcome: first deliver everything it sent
        (``sent`` frames over the link, waited for if need be; what it ``pushed`` to the
        relay), then stop following it. Held under the feedback lock if it sent anything; an
        attempt that sent nothing has nothing to order (and skips the lock)."""
        with self.lock if sent or pushed else nullcontext():
            if sent:
                self._await_frames(key, sent)
            if pushed:
                self._collect([key])
                self._note_relayed(pid, no_link)
            self._following.pop(key, None)
            self._received.pop(key, None)
            yield

    def _deliver_frame(self, key: str, seq: int, events: list[TaskEvent]) -> None:
        """A frame from the direct link (on the feedback thread)."""
        with self.lock:
            handle = self._following.get(key)
            if handle is None:  # a finished or crashed attempt's leftovers
                return
            handle.deliver(events)
            self._received[key] = seq
            self._frame_arrived.notify_all()

    def _await_frames(self, key: str, seq: int) -> None:
        """Wait until frame ``seq`` of attempt ``key`` is delivered (caller holds the lock)."""
        if not self._frame_arrived.wait_for(lambda: self._received.get(key, 0) >= seq,
                                            LAST_FRAMES_SECONDS):
            _log.warning("feedback of attempt %s did not arrive within %.0f s; its outcome is "
                         "reported without it", key, LAST_FRAMES_SECONDS)

    def _note_relayed(self, pid: Any, why: Any) -> None:
        """Say once that a worker fell back to the relay although the link was offered."""
        if self.listener is None or self._relayed_noted:
            return
        self._relayed_noted = True
        _log.warning("a Ray worker (pid %s) could not use the feedback link at %s (%s), so its "
                     "jobs' live feedback goes through the relay actor, up to %g s late; a "
                     "firewall between the nodes, or a Ray Client connection, can cause this",
                     pid, self.listener.address, why or "no reason given",
                     RELAY_POLL_SECONDS)

    def _collect(self, keys: list[str] | None) -> None:
        """Take pushed events from the relay and deliver them (caller holds the lock)."""
        import ray

        try:
            # While it is down, a short wait: the feedback lock is held, and the direct link's
            # frames wait for it (what a timed-out take removed from a new relay is lost).
            wait = LAST_FRAMES_SECONDS if self._relay_down_since is None else RELAY_DOWN_WAIT
            taken = ray.get(self.relay.take.remote(keys), timeout=wait)
        except Exception as exc:  # its node was lost: recreate it (outcomes still arrive)
            self._relay_failed(exc)
            return
        if self._relay_down_since is not None:
            _log.warning("the Ray feedback relay actor is back after %.1f s",
                         time.monotonic() - self._relay_down_since)
            self._relay_down_since = None
        for key, events in taken.items():
            handle = self._following.get(key)
            if handle is not None:  # else a finished or crashed attempt's leftovers
                handle.deliver(events)

    def _new_relay(self, configured: bool = True) -> Any:
        import ray

        return ray.remote(num_cpus=0)(FeedbackRelay).options(
            name=self._relay_name, **relay_placement(configured)).remote()

    def _relay_failed(self, exc: Exception) -> None:
        """The relay did not answer: say so once per outage (not a traceback a second), and
        if it died, start a new one under the same name (workers look it up again)."""
        from ray import exceptions

        first = self._relay_down_since is None
        if first:
            self._relay_down_since = time.monotonic()
        # A new relay whose creation found the dead one's name not yet free says so only
        # now (through Ray Client): make it again.
        if not isinstance(exc, exceptions.ActorDiedError | exceptions.ActorAlreadyExistsError):
            if first:
                _log.warning("the Ray feedback relay actor does not answer (%s); feedback of "
                             "workers that cannot reach the direct link waits for it",
                             _one_line(exc))
            return
        try:
            self.relay = self._new_relay(configured=False)
        except Exception as again:  # the name may not be free yet: try at the next poll
            if first:
                _log.warning("the Ray feedback relay actor died (%s) and could not be "
                             "recreated yet (%s); trying again every %g s", _one_line(exc),
                             _one_line(again), RELAY_POLL_SECONDS)
            return
        if first:
            _log.warning("the Ray feedback relay actor died (%s; its node was lost?); "
                         "recreated it; feedback pushed to it and not yet collected is lost",
                         _one_line(exc))

    def _serve(self) -> None:
        """The feedback thread: serve the direct link; collect the relay now and then."""
        listener = self.listener
        interval = RELAY_POLL_SECONDS if listener is not None else FLUSH_SECONDS
        next_poll = time.monotonic() + interval
        while not self._stopping.is_set():
            wait = max(0.0, next_poll - time.monotonic())
            try:
                if listener is not None:
                    listener.serve(wait)
                else:
                    self._stopping.wait(wait)
            except Exception:  # never lose the thread: feedback would stop for good
                _log.exception("serving the feedback link failed")
                self._stopping.wait(FLUSH_SECONDS)
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + interval
                if self._following:
                    with self.lock:
                        self._collect(None)
