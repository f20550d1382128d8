"""`aisle serve`: every registered graph behind an HTTP API in the shape of LangGraph's
Agent Protocol, so the `langgraph-sdk` client works against it.

Routes (a subset of the protocol, the parts a client of these graphs needs):

- `GET /healthz`, `GET /info`, `GET /openapi.json`, `GET /docs`;
- assistants, one per registered graph (`assistant_id` is the uuid5 of the graph's
  name, as LangGraph's server makes it; the graph's name works as an id too):
  `POST /assistants/search`, `GET /assistants/{id}`, `GET /assistants/{id}/schemas`,
  `GET /assistants/{id}/graph`;
- threads, persistent in SQLite (LangGraph's SQLite checkpointer holds their state):
  `POST /threads`, `POST /threads/search`, `GET|DELETE /threads/{id}`,
  `GET /threads/{id}/state`, `POST /threads/{id}/history`;
- runs on a thread: `POST /threads/{id}/runs/wait` (the final values),
  `POST /threads/{id}/runs/stream` (server-sent events: `metadata`, then one event per
  stream mode chunk: `values`, `updates`, `custom`, `messages`; `error` on failure),
  `POST /threads/{id}/runs` (in the background), `GET /threads/{id}/runs`,
  `GET /threads/{id}/runs/{run_id}`, `GET /threads/{id}/runs/{run_id}/join`;
  and without a thread: `POST /runs/wait`, `POST /runs/stream`.

Input is checked before a run starts: an unknown assistant or thread is 404, a
context the graph's context schema rejects or input keys the graph does not take are
422 (with each problem named), a body over the size limit 413, a run on a thread that
is already running one 409, more concurrent runs than a key may hold 429 (with
`Retry-After`). With API keys configured, every route but `/healthz` needs the
`x-api-key` header (401 without, 403 with a wrong one). A run that fails inside the
graph ends with status `error` and a structured error (`{"__error__": {"error",
"message"}}` from `wait`, an `error` event from `stream`), and the thread's state is
put back to what it was before the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aisle.graphs import GraphSpec, graph_specs
from aisle.server.store import Store

__all__ = ["ServeConfig", "create_app"]

logger = logging.getLogger(__name__)

NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
"""uuid5 namespace of assistant ids (LangGraph's server uses the same)."""

StreamMode = Literal["values", "updates", "custom", "messages", "messages-tuple", "debug"]


class ServeConfig(BaseModel):
    """How the server runs.

    Attributes:
        db: the SQLite file for threads, runs and graph state.
        api_keys: keys accepted in the `x-api-key` header; empty: no key needed.
        max_runs_per_key: runs one key (or, without keys, everyone) may have at once.
        max_body_bytes: the largest request body.
        contexts: per graph, context values used where a run's context gives none.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    db: Path
    api_keys: tuple[str, ...] = ()
    max_runs_per_key: int = Field(8, ge=1)
    max_body_bytes: int = Field(1 << 20, ge=1024)
    contexts: dict[str, dict[str, Any]] = Field(default_factory=dict)


class RunCreate(BaseModel):
    """A run request (the protocol's fields this server acts on; others are ignored)."""

    model_config = ConfigDict(extra="ignore")

    assistant_id: str
    input: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    stream_mode: StreamMode | list[StreamMode] = "values"
    if_not_exists: Literal["reject", "create"] = "reject"


class ThreadCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    thread_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"


class Search(BaseModel):
    model_config = ConfigDict(extra="ignore")

    metadata: dict[str, Any] = Field(default_factory=dict)
    graph_id: str | None = None
    status: str | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)


def jsonable(value: Any) -> Any:
    """Graph state as JSON: messages and pydantic models dumped, the rest recursed."""
    if isinstance(value, BaseMessage):
        return value.model_dump(mode="json")
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _assistant(spec: GraphSpec, contexts: Mapping[str, Any]) -> dict[str, Any]:
    return {"assistant_id": str(uuid.uuid5(NAMESPACE, spec.name)), "graph_id": spec.name,
            "name": spec.name, "description": spec.description, "config": {},
            "context": contexts.get(spec.name, {}), "metadata": {"created_by": "system"},
            "version": 1, "created_at": "1970-01-01T00:00:00+00:00",
            "updated_at": "1970-01-01T00:00:00+00:00"}


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(jsonable(data))}\n\n".encode()


class _BodyLimit:
    """ASGI middleware: a body over `limit` bytes is a 413 before the app reads it."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and int(declared) > self.limit:
            await _too_large(self.limit, send)
            return
        if declared is not None:
            await self.app(scope, receive, send)
            return
        # A body without a length (chunked): read it here, up to the limit, then replay.
        messages, seen = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.limit:
                await _too_large(self.limit, send)
                return
            if not message.get("more_body", False):
                break
        replay = iter(messages)

        async def replayed() -> Any:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)


async def _too_large(limit: int, send: Callable[[Any], Awaitable[None]]) -> None:
    body = json.dumps({"detail": f"request body over the limit of {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class _Server:
    """The app's state: config, store, checkpointer, compiled graphs, run limits."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.store: Store | None = None
        self.saver: AsyncSqliteSaver | None = None
        self.graphs: dict[str, Any] = {}
        self.limits: dict[str, asyncio.Semaphore] = {}
        self.busy: set[str] = set()
        self.tasks: dict[str, asyncio.Task[Any]] = {}

    async def start(self) -> None:
        self.store = await Store.open(self.config.db)
        # One connection for both (aiosqlite runs its calls in order on one thread): two
        # connections to one file refuse each other's writes under concurrent runs.
        self.saver = AsyncSqliteSaver(self.store.db)
        await self.saver.setup()

    async def stop(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()
        for task in list(self.tasks.values()):
            with contextlib.suppress(BaseException):
                await task
        if self.store is not None:
            await self.store.close()

    # -- lookups ---------------------------------------------------------------------
    def spec(self, assistant_id: str) -> GraphSpec:
        for spec in graph_specs():
            if assistant_id in (spec.name, str(uuid.uuid5(NAMESPACE, spec.name))):
                return spec
        raise HTTPException(404, f"no assistant {assistant_id!r}; registered graphs: "
                                 f"{', '.join(s.name for s in graph_specs())}")

    def graph(self, spec: GraphSpec, persistent: bool = True) -> Any:
        key = f"{spec.name}:{persistent}"
        if key not in self.graphs:
            compiled = spec.build()
            self.graphs[key] = (compiled.copy(update={"checkpointer": self.saver})
                                if persistent else compiled)
        return self.graphs[key]

    async def thread(self, thread_id: str) -> dict[str, Any]:
        assert self.store is not None
        found = await self.store.get_thread(thread_id)
        if found is None:
            raise HTTPException(404, f"no thread {thread_id!r}")
        return found

    def context(self, spec: GraphSpec, given: dict[str, Any] | None) -> Any:
        merged = {**self.config.contexts.get(spec.name, {}), **(given or {})}
        try:
            return spec.context_schema.model_validate(merged)
        except ValidationError as e:
            raise HTTPException(422, {"message": f"context for {spec.name!r}: "
                                                 + _problems(e), "errors": _errors(e)}) from e

    @staticmethod
    def check_input(spec: GraphSpec, given: dict[str, Any] | None) -> dict[str, Any]:
        if given is None:
            return {}
        schema = spec.input_schema
        known = set(getattr(schema, "__required_keys__", set())) | set(
            getattr(schema, "__optional_keys__", set()))
        unknown = sorted(set(given) - known)
        if unknown:
            raise HTTPException(422, {"message": f"input for {spec.name!r} takes "
                                                 f"{', '.join(sorted(known))}; unknown: "
                                                 f"{', '.join(unknown)}"})
        return given

    def limit(self, key: str) -> asyncio.Semaphore:
        if key not in self.limits:
            self.limits[key] = asyncio.Semaphore(self.config.max_runs_per_key)
        return self.limits[key]

    # -- runs ------------------------------------------------------------------------
    async def events(self, spec: GraphSpec, thread_id: str | None, run_id: str,
                     body: RunCreate, context: Any, key: str) -> AsyncIterator[tuple[str, Any]]:
        """Run the graph; yields `(event, data)`, ending with `("__final__", values)` or
        `("error", {...})`. Rolls the thread back on failure."""
        assert self.store is not None
        assert self.saver is not None
        graph = self.graph(spec, persistent=thread_id is not None)
        config: dict[str, Any] = {**(body.config or {})}
        configurable = {**config.get("configurable", {})}
        if thread_id is not None:
            configurable["thread_id"] = thread_id
        config["configurable"] = configurable
        config.setdefault("metadata", {}).update({"run_id": run_id, **body.metadata})
        modes = body.stream_mode if isinstance(body.stream_mode, list) else [body.stream_mode]
        lg_modes = list(dict.fromkeys("messages" if m.startswith("messages") else m
                                      for m in [*modes, "values"]))
        before = await graph.aget_state(config) if thread_id is not None else None
        if thread_id is not None:
            self.busy.add(thread_id)
            await self.store.set_thread_status(thread_id, "busy")
        await self.store.set_run_status(run_id, "running")
        final: Any = None
        try:
            async for mode, chunk in graph.astream(body.input, config, context=context,
                                                   stream_mode=lg_modes):
                if mode == "values":
                    final = chunk
                if mode in modes or (mode == "messages" and "messages-tuple" in modes):
                    yield mode, chunk
            values = jsonable(final or {})
            await self.store.finish_run(run_id, "success", output=values)
            yield "__final__", values
        except (Exception, asyncio.CancelledError) as e:
            cancelled = isinstance(e, asyncio.CancelledError)
            error = {"error": type(e).__name__,
                     "message": "the run was cancelled" if cancelled else str(e)[:2000]}
            if not cancelled:
                logger.warning("run %s of %s failed: %s", run_id, spec.name, e)
            await self._roll_back(graph, thread_id, before)
            await self.store.finish_run(run_id, "interrupted" if cancelled else "error",
                                        error=error)
            if cancelled:
                raise
            yield "error", error
        finally:
            if thread_id is not None:
                self.busy.discard(thread_id)
                await self.store.set_thread_status(thread_id, "idle")

    async def _roll_back(self, graph: Any, thread_id: str | None, before: Any) -> None:
        """Put the thread's state back to what it was before the failed run."""
        if thread_id is None or self.saver is None:
            return
        if before is None or before.created_at is None:
            await self.saver.adelete_thread(thread_id)
        else:
            await graph.aupdate_state(before.config, None, as_node="__copy__")

    async def start_run(self, thread_id: str | None, body: RunCreate, key: str
                        ) -> tuple[GraphSpec, str, Any, asyncio.Semaphore]:
        """Checks, then the run's record: `(spec, run_id, context, the key's slot)`."""
        assert self.store is not None
        spec = self.spec(body.assistant_id)
        context = self.context(spec, body.context)
        self.check_input(spec, body.input)
        if thread_id is not None:
            if await self.store.get_thread(thread_id) is None:
                if body.if_not_exists != "create":
                    raise HTTPException(404, f"no thread {thread_id!r}")
                await self.store.create_thread(thread_id, {"graph_id": spec.name})
            if thread_id in self.busy:
                raise HTTPException(409, f"thread {thread_id!r} is already running a run; "
                                         "wait for it or use another thread")
        slot = self.limit(key)
        if slot.locked():
            raise HTTPException(429, f"this key already has {self.config.max_runs_per_key} "
                                     "runs under way; retry when one finishes",
                                headers={"Retry-After": "1"})
        await slot.acquire()
        run_id = str(uuid.uuid4())
        kwargs = {"input": body.input, "context": body.context, "stream_mode": body.stream_mode}
        await self.store.create_run(run_id, thread_id, str(uuid.uuid5(NAMESPACE, spec.name)),
                                    body.metadata, jsonable(kwargs))
        return spec, run_id, context, slot


def _errors(e: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": list(err["loc"]), "msg": err["msg"]}
            for err in e.errors(include_url=False)]


def _problems(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
                     for err in e.errors(include_url=False))


def create_app(config: ServeConfig) -> FastAPI:
    """The API over every registered graph (see the module docstring)."""
    server = _Server(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    app = FastAPI(title="aisle", description="aisle's graphs over HTTP (LangGraph Agent "
                  "Protocol shapes).", lifespan=lifespan)
    app.state.server = server

    async def api_key(request: Request) -> str:
        """The caller's key (`_ApiKeys` checked it already); "anonymous" without keys."""
        return request.headers.get("x-api-key", "anonymous") if config.api_keys \
            else "anonymous"

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": {
            "message": "; ".join(problems),
            "errors": [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]}})

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"ok": True, "graphs": [s.name for s in graph_specs()]}


    @app.get("/info")
    async def info() -> dict[str, Any]:
        return {"version": "aisle", "flags": {"assistants": True, "crons": False}}

    # -- assistants ------------------------------------------------------------------
    @app.post("/assistants/search")
    async def search_assistants(body: Search | None = None) -> list[dict[str, Any]]:
        body = body or Search()
        found = [_assistant(s, config.contexts) for s in graph_specs()
                 if body.graph_id in (None, s.name)]
        return found[body.offset:body.offset + body.limit]

    @app.get("/assistants/{assistant_id}")
    async def get_assistant(assistant_id: str) -> dict[str, Any]:
        return _assistant(server.spec(assistant_id), config.contexts)

    @app.get("/assistants/{assistant_id}/schemas")
    async def assistant_schemas(assistant_id: str) -> dict[str, Any]:
        spec = server.spec(assistant_id)
        graph = server.graph(spec)
        return {"graph_id": spec.name,
                "input_schema": graph.get_input_jsonschema(),
                "output_schema": graph.get_output_jsonschema(),
                "state_schema": graph.get_output_jsonschema(),
                "config_schema": {}, "context_schema": spec.context_schema.model_json_schema()}

    @app.get("/assistants/{assistant_id}/graph")
    async def assistant_graph(assistant_id: str) -> dict[str, Any]:
        drawn = server.graph(server.spec(assistant_id)).get_graph()
        return {"mermaid": drawn.draw_mermaid(), **drawn.to_json()}

    # -- threads ---------------------------------------------------------------------
    @app.post("/threads")
    async def create_thread(body: ThreadCreate | None = None) -> dict[str, Any]:
        body = body or ThreadCreate()
        assert server.store is not None
        thread_id = body.thread_id or str(uuid.uuid4())
        existing = await server.store.get_thread(thread_id)
        if existing is not None:
            if body.if_exists == "do_nothing":
                return {**existing, "values": {}, "interrupts": {}}
            raise HTTPException(409, f"thread {thread_id!r} exists")
        created = await server.store.create_thread(thread_id, body.metadata)
        return {**created, "values": {}, "interrupts": {}}

    @app.post("/threads/search")
    async def search_threads(body: Search | None = None) -> list[dict[str, Any]]:
        body = body or Search()
        assert server.store is not None
        found = await server.store.search_threads(body.metadata, body.status, body.limit,
                                                  body.offset)
        return [{**t, "values": {}, "interrupts": {}} for t in found]

    async def _state(thread_id: str) -> Any:
        thread = await server.thread(thread_id)
        specs = [s for s in graph_specs() if s.name == thread["metadata"].get("graph_id")]
        graph = server.graph(specs[0]) if specs else server.graph(graph_specs()[0])
        return await graph.aget_state({"configurable": {"thread_id": thread_id}})

    def _state_json(state: Any, thread_id: str) -> dict[str, Any]:
        conf = state.config.get("configurable", {}) if state.config else {}
        parent = state.parent_config.get("configurable", {}) if state.parent_config else None
        return {"values": jsonable(state.values or {}), "next": list(state.next),
                "tasks": [], "interrupts": [],
                "checkpoint": {"thread_id": thread_id, "checkpoint_ns": "",
                               "checkpoint_id": conf.get("checkpoint_id")},
                "parent_checkpoint": ({"thread_id": thread_id, "checkpoint_ns": "",
                                       "checkpoint_id": parent.get("checkpoint_id")}
                                      if parent else None),
                "metadata": jsonable(state.metadata or {}), "created_at": state.created_at}

    @app.get("/threads/{thread_id}")
    async def get_thread(thread_id: str) -> dict[str, Any]:
        thread = await server.thread(thread_id)
        state = await _state(thread_id)
        return {**thread, "values": jsonable(state.values or {}), "interrupts": {}}

    @app.delete("/threads/{thread_id}", status_code=204)
    async def delete_thread(thread_id: str) -> Response:
        assert server.store is not None
        assert server.saver is not None
        await server.thread(thread_id)
        if thread_id in server.busy:
            raise HTTPException(409, f"thread {thread_id!r} is running a run")
        await server.store.delete_thread(thread_id)
        await server.saver.adelete_thread(thread_id)
        return Response(status_code=204)

    @app.get("/threads/{thread_id}/state")
    async def thread_state(thread_id: str) -> dict[str, Any]:
        return _state_json(await _state(thread_id), thread_id)

    @app.post("/threads/{thread_id}/history")
    async def thread_history(thread_id: str, body: Search | None = None
                             ) -> list[dict[str, Any]]:
        body = body or Search()
        thread = await server.thread(thread_id)
        specs = [s for s in graph_specs() if s.name == thread["metadata"].get("graph_id")]
        graph = server.graph(specs[0] if specs else graph_specs()[0])
        out = []
        async for state in graph.aget_state_history(
                {"configurable": {"thread_id": thread_id}}, limit=body.limit):
            out.append(_state_json(state, thread_id))
        return out

    # -- runs ------------------------------------------------------------------------
    async def _wait(thread_id: str | None, body: RunCreate, key: str) -> dict[str, Any]:
        spec, run_id, context, slot = await server.start_run(thread_id, body, key)
        await _remember_graph(thread_id, spec)
        try:
            result: dict[str, Any] = {}
            async for event, data in server.events(spec, thread_id, run_id, body, context, key):
                if event == "__final__":
                    result = data
                elif event == "error":
                    result = {"__error__": data}
            return result
        finally:
            slot.release()

    async def _remember_graph(thread_id: str | None, spec: GraphSpec) -> None:
        """A thread's first run decides which graph reads its state."""
        assert server.store is not None
        if thread_id is None:
            return
        thread = await server.store.get_thread(thread_id)
        if thread is not None and "graph_id" not in thread["metadata"]:
            await server.store.db.execute(
                "UPDATE aisle_threads SET metadata = ? WHERE thread_id = ?",
                (json.dumps({**thread["metadata"], "graph_id": spec.name}), thread_id))
            await server.store.db.commit()

    def _stream(thread_id: str | None, spec: GraphSpec, run_id: str, body: RunCreate,
                context: Any, key: str, slot: asyncio.Semaphore) -> StreamingResponse:
        async def body_iter() -> AsyncIterator[bytes]:
            try:
                yield _sse("metadata", {"run_id": run_id, "thread_id": thread_id,
                                        "attempt": 1})
                async for event, data in server.events(spec, thread_id, run_id, body,
                                                       context, key):
                    if event == "__final__":
                        continue
                    yield _sse(event, data)
            finally:
                slot.release()

        headers = {"Content-Location": f"/threads/{thread_id}/runs/{run_id}" if thread_id
                   else f"/runs/{run_id}", "Cache-Control": "no-store"}
        return StreamingResponse(body_iter(), media_type="text/event-stream", headers=headers)

    @app.post("/threads/{thread_id}/runs/wait")
    async def run_wait(thread_id: str, body: RunCreate,
                       key: str = Depends(api_key)) -> dict[str, Any]:
        return await _wait(thread_id, body, key)

    @app.post("/runs/wait")
    async def stateless_wait(body: RunCreate, key: str = Depends(api_key)) -> dict[str, Any]:
        return await _wait(None, body, key)

    @app.post("/threads/{thread_id}/runs/stream")
    async def run_stream(thread_id: str, body: RunCreate,
                         key: str = Depends(api_key)) -> StreamingResponse:
        spec, run_id, context, slot = await server.start_run(thread_id, body, key)
        await _remember_graph(thread_id, spec)
        return _stream(thread_id, spec, run_id, body, context, key, slot)

    @app.post("/runs/stream")
    async def stateless_stream(body: RunCreate, key: str = Depends(api_key)
                               ) -> StreamingResponse:
        spec, run_id, context, slot = await server.start_run(None, body, key)
        return _stream(None, spec, run_id, body, context, key, slot)

    @app.post("/threads/{thread_id}/runs")
    async def run_background(thread_id: str, body: RunCreate,
                             key: str = Depends(api_key)) -> dict[str, Any]:
        assert server.store is not None
        spec, run_id, context, slot = await server.start_run(thread_id, body, key)
        await _remember_graph(thread_id, spec)

        async def execute() -> None:
            try:
                async for _ in server.events(spec, thread_id, run_id, body, context, key):
                    pass
            finally:
                slot.release()
                server.tasks.pop(run_id, None)

        # Marked busy now, so a second run on the thread is refused at once.
        server.busy.add(thread_id)
        server.tasks[run_id] = asyncio.create_task(execute())
        run = await server.store.get_run(run_id)
        assert run is not None
        return run

    @app.get("/threads/{thread_id}/runs")
    async def list_runs(thread_id: str, limit: int = 10, offset: int = 0
                        ) -> list[dict[str, Any]]:
        assert server.store is not None
        await server.thread(thread_id)
        return await server.store.list_runs(thread_id, limit, offset)

    async def _run_of(thread_id: str, run_id: str) -> dict[str, Any]:
        assert server.store is not None
        await server.thread(thread_id)
        run = await server.store.get_run(run_id)
        if run is None or run["thread_id"] != thread_id:
            raise HTTPException(404, f"no run {run_id!r} on thread {thread_id!r}")
        return run

    @app.get("/threads/{thread_id}/runs/{run_id}")
    async def get_run(thread_id: str, run_id: str) -> dict[str, Any]:
        return await _run_of(thread_id, run_id)

    @app.get("/threads/{thread_id}/runs/{run_id}/join")
    async def join_run(thread_id: str, run_id: str) -> dict[str, Any]:
        assert server.store is not None
        await _run_of(thread_id, run_id)
        task = server.tasks.get(run_id)
        if task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(task)
        output, error = await server.store.run_result(run_id)
        return {"__error__": error} if error else (output or {})

    return _wrap(app, config)


def _wrap(app: FastAPI, config: ServeConfig) -> FastAPI:
    app.add_middleware(_BodyLimit, limit=config.max_body_bytes)  # type: ignore[arg-type]
    if config.api_keys:
        app.add_middleware(_ApiKeys, keys=frozenset(config.api_keys))  # type: ignore[arg-type]
    return app


class _ApiKeys:
    """ASGI middleware: with keys configured, every route but `/healthz` (the docs and
    the OpenAPI schema included) needs one in `x-api-key`: 401 without, 403 when wrong."""

    OPEN = frozenset({"/healthz"})

    def __init__(self, app: Any, keys: frozenset[str]) -> None:
        self.app, self.keys = app, keys

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope["path"] in self.OPEN:
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", [])).get(b"x-api-key")
        if given is not None and given.decode(errors="replace") in self.keys:
            await self.app(scope, receive, send)
            return
        status, text = ((401, "this server needs an API key: send it in the x-api-key "
                              "header") if given is None
                        else (403, "the x-api-key header holds an unknown key"))
        body = json.dumps({"detail": text}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
