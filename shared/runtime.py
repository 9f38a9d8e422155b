"""What every service process runs besides its own handlers: its consumers, the outbox relay,
any background loops it asks for, and the health, readiness and metrics endpoints."""
import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import Database, make_engine, make_sessions
from shared.logs import configure
from shared.messaging import Consumers
from shared.relay import OutboxRelay
from shared.settings import Settings

log = logging.getLogger("payhara.runtime")
READINESS_PROBE_S = 2.0  # a frozen database must not freeze /readyz with it


class ServiceRuntime:
    def __init__(self, name: str, settings: Settings, engine: AsyncEngine,
                 sessions: Database, consumers: Consumers, outbox: Table | None,
                 serves_without_broker: bool = False):
        self.name = name
        self.settings = settings
        self.engine = engine
        self.sessions = sessions
        self.consumers = consumers
        # intake takes consultations while the broker is away (its outbox keeps the events):
        # the broker being away is then reported, but does not make it unready
        self.serves_without_broker = serves_without_broker
        self.relay = OutboxRelay(outbox, sessions, settings) if outbox is not None else None
        self._loops: dict[str, Callable[[], Awaitable[None]]] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        if self.relay is not None:
            self.alongside("outbox_relay", self.relay.run)

    @classmethod
    def assemble(cls, name: str, settings: Settings, outbox: Table | None,
                 serves_without_broker: bool = False) -> "ServiceRuntime":
        """The parts every service is made of: logging, database, consumers, outbox relay."""
        configure(name)
        engine = make_engine(settings)
        return cls(name, settings, engine, make_sessions(engine), Consumers(settings, name), outbox,
                   serves_without_broker)

    def alongside(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run `loop()` for the service's lifetime (cancelled at the stop); a loop that ends
        makes the service unready, under its name."""
        self._loops[name] = loop

    def app(self, **fastapi_options) -> FastAPI:
        """The service's HTTP app, running the consumers and loops for its lifetime."""
        app = FastAPI(title=f"payhara-desk {self.name}", lifespan=self.lifespan, **fastapi_options)
        app.state.runtime = self
        app.include_router(self.health_router())
        return app

    @asynccontextmanager
    async def lifespan(self, app: FastAPI):
        await self.consumers.start()
        for name, loop in self._loops.items():
            self._tasks[name] = asyncio.create_task(loop(), name=f"{self.name}-{name}")
        log.info("%s started", self.name)
        try:
            yield
        finally:
            for task in self._tasks.values():
                task.cancel()
            for task in self._tasks.values():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.consumers.stop()
            await self.engine.dispose()

    async def problems(self) -> tuple[list[str], list[str]]:
        """(why this instance should not take traffic now, what is degraded but not blocking)."""
        blocking, degraded = [], []
        if not self.consumers.ready():
            (degraded if self.serves_without_broker else blocking).append("broker")
        if paused := self.consumers.paused():
            (degraded if self.serves_without_broker else blocking).append("consumers_paused")
            log.debug("paused consumers: %s", paused)
        blocking.extend(name for name, task in self._tasks.items() if task.done())
        if not await self._database_answers():
            blocking.append("database")
        return blocking, degraded

    async def _database_answers(self) -> bool:
        try:
            async with asyncio.timeout(READINESS_PROBE_S):
                async with self.engine.connect() as conn:
                    await conn.execute(text("select 1"))
            return True
        except Exception:
            return False

    def health_router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)

        @router.get("/healthz")
        async def healthz() -> dict:
            """Liveness: the process answers. Never depends on the database or the broker."""
            return {"service": self.name, "status": "ok"}

        @router.get("/readyz")
        async def readyz(response: Response) -> dict:
            blocking, degraded = await self.problems()
            if blocking:
                response.status_code = 503
            return {"service": self.name, "ready": not blocking, "problems": blocking, "degraded": degraded}

        @router.get("/metrics")
        async def metrics() -> Response:
            return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

        return router
