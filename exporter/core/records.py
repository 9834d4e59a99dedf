"""The normalized session record every provider module produces."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Phase(StrEnum):
    """The provider-independent lifecycle phase of a session."""

    PENDING = "pending"
    LIVE = "live"
    PAUSED = "paused"
    """Resting and resumable: nothing runs, nothing is billed for compute; neither live
    (live seconds, overdue, leases) nor ended."""
    ENDED = "ended"
    FAILED = "failed"
    UNKNOWN = "unknown"


class SessionRecord(NamedTuple):
    """One session as the exporter sees it, whatever the provider.

    A named tuple, not a frozen dataclass: immutable all the same, and built in
    less than half the time, which counts at one record per session per poll.

    Times are unix seconds; ``None`` means the provider does not report it (or the row's
    value could not be read).
    ``leases`` is ``None`` when the lease count is unknown (not zero);
    ``executions`` is the provider's count of work done in the session, where it has one;
    ``run_id`` the run the session is executing now, where the provider tells it
    (Trigger.dev's ``currentRunId``).
    """

    id: str
    status: str
    phase: Phase
    created: float | None
    deadline: float | None = None
    last_activity: float | None = None
    leases: int | None = None
    executions: int | None = None
    kind: str | None = None
    run_id: str | None = None
