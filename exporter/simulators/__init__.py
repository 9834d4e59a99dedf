"""In-process fakes of the providers' "list sessions" APIs.

Faithful to their OpenAPI specs, and to the official SDKs where those show the real API
doing more (each module's docstring says what).
"""

from __future__ import annotations

from .agi import AgiSimulator, agi_row
from .base import OMIT, Fault, QueryError, RequestLog, Simulator, iso, serve
from .chaser import ChaserSimulator, chaser_list_row, chaser_row
from .notte import NotteSimulator, notte_row
from .together import TogetherSimulator, together_row
from .trigger import TriggerSimulator, trigger_row

__all__ = [
    "OMIT",
    "SIMULATORS",
    "AgiSimulator",
    "ChaserSimulator",
    "Fault",
    "NotteSimulator",
    "QueryError",
    "RequestLog",
    "Simulator",
    "TogetherSimulator",
    "TriggerSimulator",
    "agi_row",
    "chaser_list_row",
    "chaser_row",
    "iso",
    "notte_row",
    "serve",
    "together_row",
    "trigger_row",
]

SIMULATORS: dict[str, type[Simulator]] = {
    simulator.provider: simulator
    for simulator in (
        TogetherSimulator,
        AgiSimulator,
        TriggerSimulator,
        ChaserSimulator,
        NotteSimulator,
    )
}
