"""Relay settings: where data lives and every limit that protects the relay, with defaults.

Each limit, when exceeded, closes only the offending connection with a
:class:`~forge_server.relay.connection.CloseCode` and a reason that names the limit.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

__all__ = ["RelayConfig"]


@dataclass(frozen=True)
class RelayConfig:
    data_dir: Path
    """Folder of ``forge.db`` (room logs, and other modules' tables)."""

    # -- limits (issue 3) -----------------------------------------------------------------
    max_frame_bytes: int = 8 * 1024 * 1024
    """Largest WebSocket message accepted (close 1009 beyond it)."""
    max_connections_per_user: int = 1000
    """Open WebSocket connections one user may hold across all rooms (close 4530)."""
    max_connections_per_ip: int = 1000
    """WebSocket upgrades from one IP address being authenticated at once (HTTP 429 beyond
    it). Open connections count per user only: behind an SSH tunnel or a proxy every user
    shares one address."""
    max_messages_per_second: float = 500.0
    """Sustained messages per second per connection; bursts up to one second's worth (4529)."""
    max_bytes_per_second: float = 16 * 1024 * 1024
    """Sustained bytes per second per connection; bursts up to one second's worth (4529)."""
    max_rooms_loaded: int = 2000
    """Rooms held in memory at once; joining one more is refused (close 4503)."""
    max_document_bytes: int = 64 * 1024 * 1024
    """Encoded size a room's document may reach; an update beyond it is refused (close 4413)."""

    malformed_strikes_before_refusal: float = 50.0
    """Connections of one client (address + token) closed for malformed frames, decaying with
    the half-life below, after which its upgrades are refused with HTTP 429 until it decays."""
    malformed_strike_half_life_s: float = 10.0
    """Half-life of a client's malformed-frame count."""

    max_awareness_ids_per_connection: int = 1
    """Awareness client ids one connection may own (the first ones it publishes); states for
    more ids are ignored. A y-websocket client publishes one: its document's client id."""
    max_awareness_state_bytes: int = 4096
    """Largest awareness state (UTF-8 JSON) relayed; a larger one is dropped, not relayed."""
    max_awareness_updates_per_second: float = 20.0
    """Awareness updates relayed per second per connection, bursts up to one second's worth;
    faster ones are merged and relayed when the budget allows (the latest state always goes)."""

    # -- queues, timers -------------------------------------------------------------------
    send_queue_messages: int = 1000
    """Messages waiting to be sent to one client before it counts as not reading (4508)."""
    send_queue_bytes: int = 16 * 1024 * 1024
    """Bytes waiting to be sent to one client before it counts as not reading (4508)."""
    heartbeat_s: float = 20.0
    """WebSocket ping interval; a peer that does not answer is dropped."""
    awareness_timeout_s: float = 30.0
    """An awareness state not renewed for this long is removed."""
    room_idle_s: float = 60.0
    """A room with no connections and no holders for this long is unloaded."""
    sweep_interval_s: float = 5.0
    """How often idle rooms and stale awareness states are looked for."""
    compact_after_updates: int = 1000
    """Compact a room's log into a snapshot after this many updates (and when it unloads)."""
    compact_inline_below_bytes: int = 256 * 1024
    """Rooms smaller than this are compacted on the event loop; larger ones in a thread."""
    store_writer_thread: bool = False
    """Commit updates in a writer thread instead of on the event loop (one transaction per loop
    turn either way). The thread takes SQLite's time off the loop but costs more CPU in all
    (thread wake-ups, GIL hand-offs): worth it with cores to spare, not on small machines."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value <= 0:
                raise ValueError(f"relay setting {field.name} must be positive, got {value}")

    @property
    def db_path(self) -> Path:
        return self.data_dir / "forge.db"

    @classmethod
    def setting_names(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "data_dir"]

    @classmethod
    def from_settings(cls, data_dir: Path, settings: list[str]) -> RelayConfig:
        """A config from ``NAME=VALUE`` strings (``forge serve --relay-setting``)."""
        defaults = cls(data_dir=data_dir)
        values: dict[str, int | float] = {}
        for item in settings:
            name, sep, raw = item.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in cls.setting_names():
                raise ValueError(
                    f"relay setting {item!r} must be NAME=VALUE with NAME one of: "
                    + ", ".join(cls.setting_names())
                )
            kind = type(getattr(defaults, name))
            if kind is bool:
                if raw.strip().lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(f"relay setting {name} needs true or false, got {raw!r}")
                values[name] = raw.strip().lower() in ("1", "true", "yes", "on")
                continue
            try:
                values[name] = kind(float(raw)) if kind is int else float(raw)
            except ValueError:
                raise ValueError(f"relay setting {name} needs a number, got {raw!r}") from None
        return cls(data_dir=data_dir, **values)  # type: ignore[arg-type]
