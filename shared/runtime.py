"""What every service process runs besides its own handlers: its consumers, the outbox relay,
and the health, readiness and metrics endpoints."""
import asyncio
import contextlib
import logging
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


class ServiceRuntime:
    def __init__(self, name: str, settings: Settings, engine: AsyncEngine,
                 sessions: Database, consumers: Consumers, outbox: Table | None):
        self.name = name
        self.settings = settings
        self.engine = engine
        self.sessions = sessions
        self.consumers = consumers
        self.relay = OutboxRelay(outbox, sessions, settings) if outbox is not None else None
        self._relay_task: asyncio.Task | None = None

    @classmethod
    def assemble(cls, name: str, settings: Settings, outbox: Table | None) -> "ServiceRuntime":
        """The parts every service is made of: logging, database, consumers, outbox relay."""
        configure(name)
        engine = make_engine(settings)
        return cls(name, settings, engine, make_sessions(engine), Consumers(settings, name), outbox)

    def app(self, **fastapi_options) -> FastAPI:
        """The service's HTTP app, running the consumers and relay for its lifetime."""
        app = FastAPI(title=f"payhara-desk {self.name}", lifespan=self.lifespan, **fastapi_options)
        app.state.runtime = self
        app.include_router(self.health_router())
        return app

    @asynccontextmanager
    async def lifespan(self, app: FastAPI):
        await self.consumers.start()
        if self.relay is not None:
            self._relay_task = asyncio.create_task(self.relay.run(), name=f"{self.name}-relay")
        log.info("%s started", self.name)
        try:
            yield
        finally:
            if self._relay_task is not None:
                self._relay_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._relay_task
            await self.consumers.stop()
            await self.engine.dispose()

    async def problems(self) -> list[str]:
        """Why this instance should not take traffic now; empty when ready."""
        found = []
        if not self.consumers.ready():
            found.append("broker")
        if self._relay_task is not None and self._relay_task.done():
            found.append("outbox_relay")
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("select 1"))
        except Exception:
            found.append("database")
        return found

    def health_router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)

        @router.get("/healthz")
        async def healthz() -> dict:
            return {"service": self.name, "status": "ok"}

        @router.get("/readyz")
        async def readyz(response: Response) -> dict:
            problems = await self.problems()
            if problems:
                response.status_code = 503
            return {"service": self.name, "ready": not problems, "problems": problems}

        @router.get("/metrics")
        async def metrics() -> Response:
            return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

        return router
