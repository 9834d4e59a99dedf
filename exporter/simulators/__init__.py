"""In-process fakes of the providers' "list sessions" APIs.

Faithful to their OpenAPI specs, and to the official SDKs where those show the real API
doing more (each module's docstring says what). The five providers added later (E2B,
Browserbase, Daytona, Runloop, Steel) have no spec in the shared folder: their SDKs are the
reference, and each module has a seeded `<provider>_population(now, seed=..., size=...)`
holding every status.
"""

from __future__ import annotations

from .agi import AgiSimulator, agi_row
from .base import OMIT, Fault, QueryError, RequestLog, Simulator, iso, serve
from .browserbase import BrowserbaseSimulator, browserbase_population, browserbase_row
from .chaser import ChaserSimulator, chaser_list_row, chaser_row
from .daytona import DaytonaSimulator, daytona_population, daytona_row
from .e2b import E2bSimulator, e2b_population, e2b_row
from .notte import NotteSimulator, notte_row
from .runloop import RunloopSimulator, runloop_population, runloop_row
from .steel import SteelSimulator, steel_population, steel_row
from .together import TogetherSimulator, together_row
from .trigger import TriggerSimulator, trigger_row

__all__ = [
    "OMIT",
    "SIMULATORS",
    "AgiSimulator",
    "BrowserbaseSimulator",
    "ChaserSimulator",
    "DaytonaSimulator",
    "E2bSimulator",
    "Fault",
    "NotteSimulator",
    "QueryError",
    "RequestLog",
    "RunloopSimulator",
    "Simulator",
    "SteelSimulator",
    "TogetherSimulator",
    "TriggerSimulator",
    "agi_row",
    "browserbase_population",
    "browserbase_row",
    "chaser_list_row",
    "chaser_row",
    "daytona_population",
    "daytona_row",
    "e2b_population",
    "e2b_row",
    "iso",
    "notte_row",
    "runloop_population",
    "runloop_row",
    "serve",
    "steel_population",
    "steel_row",
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
        E2bSimulator,
        BrowserbaseSimulator,
        DaytonaSimulator,
        RunloopSimulator,
        SteelSimulator,
    )
}
