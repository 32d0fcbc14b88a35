"""The console's web server (aiohttp): the page, a JSON API, and a websocket that pushes the state.

API (JSON bodies; every answer is JSON with ``error`` on failure and the HTTP status saying which kind):

==========================  ======================================================================
``GET  /api/state``         the state (observation id, proposal, episode, the simulated cell's score)
``GET  /api/events``        websocket: the state, sent again after every change
``GET  /api/observation/{id}/{layer}.png``  ``color``, ``height``, ``pick``, ``place`` of that observation
``POST /api/propose``       ``{"instruction": str}``: a fresh view and the policy's proposal
``POST /api/observe``       ``{"instruction": str}``: a fresh view without the policy (demonstration)
``POST /api/execute``       ``{"observation_id": int}`` executes the proposal; with ``"correction":
                            {"pick": [row, col], "place": [row, col], "rotation": degrees}`` the operator's
``POST /api/stop``          cancels the running execution
``POST /api/episode``       ``{"outcome": "done" | "failed", "score": 0-100}``: record the episode
``POST /api/reset``         ``{"seed": int (optional), "discard": bool}``: a new simulated episode
==========================  ======================================================================

A POST is accepted only with ``Content-Type: application/json`` and, when the browser sends an ``Origin``, one
that names this server: another web page open in the operator's browser cannot make the arm move (a
cross-site form cannot send JSON without the browser asking this server first, and it never says yes).
"""

from __future__ import annotations

import asyncio
import json
from importlib import resources
from typing import Any

from aiohttp import WSMsgType, web

from cliport_ros.console.session import ConsoleError, ConsoleSession, render_layers

#: Request bodies are small JSON objects.
MAX_BODY_BYTES = 64 * 1024
#: PNG layers of this many recent observations are kept for the page.
KEPT_OBSERVATIONS = 4
STATIC = resources.files("cliport_ros.console") / "static"

SESSION_KEY: web.AppKey[ConsoleSession] = web.AppKey("session", ConsoleSession)
LAYERS_KEY: web.AppKey[dict[int, dict[str, bytes]]] = web.AppKey("layers", dict)
SOCKETS_KEY: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("sockets", set)


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise ConsoleError("send a JSON body (Content-Type: application/json)", status=415)
    origin = request.headers.get("Origin")
    if origin is not None and origin.split("://", 1)[-1] != request.host:
        raise ConsoleError(f"requests from {origin} are refused: only this console's own page may act", 403)
    raw = await request.read()
    if len(raw) > MAX_BODY_BYTES:
        raise ConsoleError(f"body of {len(raw)} bytes; the limit is {MAX_BODY_BYTES}", status=413)
    try:
        body = json.loads(raw or b"{}")
    except json.JSONDecodeError as exc:
        raise ConsoleError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ConsoleError("body must be a JSON object")
    return body


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except ConsoleError as exc:
        return _error(exc.message, exc.status)
    except web.HTTPException:
        raise
    except Exception as exc:  # the server stays up and says what failed
        return _error(f"internal error: {type(exc).__name__}: {exc}", 500)


def _keep_layers(app: web.Application) -> None:
    session = app[SESSION_KEY]
    if session.observation is None or session.observation_id in app[LAYERS_KEY]:
        return
    layers = app[LAYERS_KEY]
    layers[session.observation_id] = render_layers(session.observation)
    for old in sorted(layers)[:-KEPT_OBSERVATIONS]:
        del layers[old]


async def index(request: web.Request) -> web.Response:
    return web.Response(text=(STATIC / "index.html").read_text(), content_type="text/html")


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    kinds = {"console.js": "application/javascript", "console.css": "text/css"}
    if name not in kinds:
        raise web.HTTPNotFound()
    return web.Response(text=(STATIC / name).read_text(), content_type=kinds[name])


async def state(request: web.Request) -> web.Response:
    return web.json_response(request.app[SESSION_KEY].state())


async def layer(request: web.Request) -> web.Response:
    try:
        number = int(request.match_info["id"])
    except ValueError as exc:
        raise ConsoleError("observation id must be an integer", status=404) from exc
    _keep_layers(request.app)
    pngs = request.app[LAYERS_KEY].get(number)
    name = request.match_info["layer"]
    if pngs is None or name not in pngs:
        raise ConsoleError(f"no layer {name!r} of observation {number} (kept: the last {KEPT_OBSERVATIONS})", 404)
    return web.Response(body=pngs[name], content_type="image/png", headers={"Cache-Control": "max-age=3600"})


def _look(run_policy: bool) -> Any:
    """The handler of a fresh view: with the policy's proposal (``/api/propose``) or without (``/api/observe``)."""

    async def handler(request: web.Request) -> web.Response:
        body = await _body(request)
        out = await request.app[SESSION_KEY].propose(body.get("instruction", ""), run_policy=run_policy)
        _keep_layers(request.app)
        return web.json_response(out)

    return handler


async def execute(request: web.Request) -> web.Response:
    body = await _body(request)
    if "observation_id" not in body:
        raise ConsoleError("say which observation the action was chosen on: observation_id")
    return web.json_response(await request.app[SESSION_KEY].execute(body["observation_id"], body.get("correction")))


async def stop(request: web.Request) -> web.Response:
    await _body(request)
    return web.json_response(await request.app[SESSION_KEY].stop())


async def episode(request: web.Request) -> web.Response:
    body = await _body(request)
    return web.json_response(request.app[SESSION_KEY].finish(body.get("outcome"), body.get("score")))


async def reset(request: web.Request) -> web.Response:
    body = await _body(request)
    return web.json_response(await request.app[SESSION_KEY].reset(body.get("seed"), bool(body.get("discard", False))))


async def events(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse(heartbeat=20.0)
    await socket.prepare(request)
    request.app[SOCKETS_KEY].add(socket)
    try:
        await socket.send_json(request.app[SESSION_KEY].state())
        async for msg in socket:  # the page only listens; anything it sends is ignored
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        request.app[SOCKETS_KEY].discard(socket)
    return socket


def make_app(session: ConsoleSession) -> web.Application:
    """The console application around ``session``."""
    app = web.Application(middlewares=[_errors], client_max_size=MAX_BODY_BYTES)
    app[SESSION_KEY] = session
    app[LAYERS_KEY] = {}
    app[SOCKETS_KEY] = set()

    def broadcast() -> None:
        sockets = list(app[SOCKETS_KEY])
        if not sockets:
            return
        text = json.dumps(session.state())
        for socket in sockets:
            if not socket.closed:
                asyncio.ensure_future(socket.send_str(text))

    unsubscribe = session.subscribe(broadcast)

    async def close_sockets(app: web.Application) -> None:
        unsubscribe()
        for socket in list(app[SOCKETS_KEY]):
            await socket.close()

    app.on_shutdown.append(close_sockets)
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/api/state", state)
    app.router.add_get("/api/events", events)
    app.router.add_get("/api/observation/{id}/{layer}.png", layer)
    app.router.add_post("/api/propose", _look(run_policy=True))
    app.router.add_post("/api/observe", _look(run_policy=False))
    app.router.add_post("/api/execute", execute)
    app.router.add_post("/api/stop", stop)
    app.router.add_post("/api/episode", episode)
    app.router.add_post("/api/reset", reset)
    return app
