"""The operator console's logic and web API without ROS: a scripted cell double stands in for the ROS link
(``RosCellLink``; the real link is exercised against real nodes in test_console_browser.py)."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer

from cliport_ros.console.server import make_app
from cliport_ros.console.session import (
    CellStatus,
    ConsoleConfig,
    ConsoleError,
    ConsoleSession,
    ExecutionResult,
    Observation,
    Proposal,
)
from cliport_ros.data import list_episodes, load_episode
from cliport_ros.geometry.workspace import Workspace
from cliport_ros.types import PickPlace, Pose

WS = Workspace()
INSTRUCTION = "put the red block in the green bowl"


class ScriptedCellDouble:
    """Answers like a simulated cell: a proposal with fixed pixels, executions that succeed (or as scripted),
    and a score that rises by 50 per successful step."""

    def __init__(self) -> None:
        self.executed: list[tuple[PickPlace, str]] = []
        self.results: list[ExecutionResult] = []
        self.cell = CellStatus("put-block-in-bowl-seen-colors", "val", 1, INSTRUCTION, 0, 0.0, False)
        self.proposals = 0
        self.release = asyncio.Event()
        self.hold = False
        self.stopped = False
        self.on_status = None

    async def propose(self, instruction: str, run_policy: bool) -> Observation:
        self.proposals += 1
        rows, cols = WS.shape
        color = np.full((rows, cols, 3), self.proposals, np.uint8)
        height = np.zeros((rows, cols), np.float32)
        height[100, 50] = 0.04
        proposal = None
        if run_policy:
            pick_heat = np.zeros((rows, cols), np.float32)
            pick_heat[100, 50] = 1.0
            proposal = Proposal(
                PickPlace(
                    Pose.from_xyz_yaw(WS.pixel_to_xyz((100, 50), height), 0.0),
                    Pose.from_xyz_yaw(WS.pixel_to_xyz((200, 60), height), 0.5),
                    0.9,
                    0.8,
                    instruction=instruction,
                ),
                (100, 50),
                (200, 60),
                0.5,
                pick_heat,
                pick_heat * 0.5,
            )
        return Observation(color, height, WS, 123, instruction, proposal)

    async def execute(self, action: PickPlace, source: str) -> ExecutionResult:
        self.executed.append((action, source))
        if self.hold:
            await self.release.wait()
            if self.stopped:
                return ExecutionResult(False, 8, "canceled", moved=True)
        result = self.results.pop(0) if self.results else ExecutionResult(True, 1, "ok", moved=True)
        if result.success:
            c = self.cell
            self.cell = CellStatus(c.task, c.split, c.seed, c.instruction, c.step + 1, min(100.0, c.score + 50), False)
        return result

    async def stop(self) -> bool:
        self.stopped = True
        self.release.set()
        return True

    def status(self) -> CellStatus | None:
        return self.cell

    def can_reset(self) -> bool:
        return True

    async def reset(self, seed: int | None) -> CellStatus:
        self.cell = CellStatus(
            self.cell.task, "val", seed if seed is not None else self.cell.seed + 2, "x", 0, 0, False
        )
        return self.cell


def run(coro):
    return asyncio.run(coro)


def test_a_proposal_executed_then_a_correction_make_an_episode_train_reads(tmp_path):
    cell = ScriptedCellDouble()
    session = ConsoleSession(cell, ConsoleConfig(record_dir=str(tmp_path)), clock=lambda: 1000.0)

    async def script():
        state = await session.propose(INSTRUCTION)
        assert state["proposal"]["pick_pixel"] == [100, 50] and state["can_execute"]
        out = await session.execute(state["observation_id"])
        assert out["recorded"] and out["result"]["source"] == "policy"
        state = await session.propose(INSTRUCTION)
        return await session.execute(state["observation_id"], {"pick": [10, 20], "place": [300, 150], "rotation": 90})

    out = run(script())
    assert out["result"]["source"] == "operator" and out["state"]["cell"]["score"] == 100.0
    operator_action, source = cell.executed[1]
    assert source == "operator"
    assert operator_action.pick.position == pytest.approx(WS.pixel_to_xyz((10, 20), 0.0))
    assert operator_action.place.position == pytest.approx(WS.pixel_to_xyz((300, 150), 0.0))
    assert operator_action.place.yaw == pytest.approx(math.pi / 2)
    saved = session.finish("done", 90)
    (path,) = list_episodes(tmp_path)
    assert saved["path"] == str(path) and path.name == "put-block-in-bowl-seen-colors-train-000000.npz"
    episode = load_episode(path)
    assert [s.source for s in episode.steps] == ["policy", "operator"]
    assert episode.score == 90 and episode.info["outcome"] == "done" and episode.info["operator_score"] == 90
    assert episode.info["cell"]["seed"] == 1
    first, second = episode.steps
    assert first.pick_pixel == (100, 50) and first.place_pixel == (200, 60)
    assert first.place.yaw == pytest.approx(0.5) and first.reward == pytest.approx(0.5)
    assert int(first.color[0, 0, 0]) == 1 and int(second.color[0, 0, 0]) == 2  # each step keeps its own view
    assert first.instruction == second.instruction == INSTRUCTION
    assert second.pick_pixel == (10, 20) and second.place_pixel == (300, 150)
    # the next episode gets the next number
    run(session.propose(INSTRUCTION))
    run(session.execute(session.observation_id))
    session.finish("failed", 0)
    assert [p.name[-10:] for p in list_episodes(tmp_path)] == ["000000.npz", "000001.npz"]
    assert load_episode(list_episodes(tmp_path)[1]).info["outcome"] == "failed"


def test_nothing_moves_on_a_stale_spent_or_missing_observation(tmp_path):
    cell = ScriptedCellDouble()
    session = ConsoleSession(cell, ConsoleConfig(record_dir=str(tmp_path)))

    async def script():
        with pytest.raises(ConsoleError, match="no observation yet"):
            await session.execute(1)
        first = (await session.propose(INSTRUCTION))["observation_id"]
        second = (await session.propose(INSTRUCTION))["observation_id"]
        with pytest.raises(ConsoleError, match="is not the newest") as stale:
            await session.execute(first)
        assert stale.value.status == 409
        await session.execute(second)
        with pytest.raises(ConsoleError, match="already acted on"):
            await session.execute(second)
        # demonstration mode has no proposal to execute: only clicked actions
        demo = (await session.propose("", run_policy=False))["observation_id"]
        with pytest.raises(ConsoleError, match="no proposal"):
            await session.execute(demo)
        with pytest.raises(ConsoleError, match="say what the step does"):
            await session.execute(demo, {"pick": [1, 1], "place": [2, 2]})

    run(script())
    assert len(cell.executed) == 1


@pytest.mark.parametrize(
    ("correction", "message"),
    [
        ({"pick": [1, 1]}, r"place must be \[row, column\] integers, got None"),
        ({"pick": [320, 0], "place": [1, 1]}, r"pick \[320, 0\] is outside the 320 x 160 view"),
        ({"pick": [1.5, 0], "place": [1, 1]}, "pick must be"),
        ({"pick": [1, 1], "place": [2, 2], "rotation": "left"}, "rotation must be a number of degrees"),
        ({"pick": [1, 1], "place": [2, 2], "rotation": float("nan")}, r"rotation must be in \[-360, 360\]"),
    ],
)
def test_bad_corrections_are_refused_and_the_observation_stays_usable(tmp_path, correction, message):
    cell = ScriptedCellDouble()
    session = ConsoleSession(cell, ConsoleConfig(record_dir=str(tmp_path)))

    async def script():
        obs = (await session.propose(INSTRUCTION))["observation_id"]
        with pytest.raises(ConsoleError, match=message):
            await session.execute(obs, correction)
        return await session.execute(obs)

    assert run(script())["recorded"]
    assert len(cell.executed) == 1


def test_a_refused_goal_is_not_a_step_and_a_failed_motion_is(tmp_path):
    cell = ScriptedCellDouble()
    cell.results = [
        ExecutionResult(False, 3, "outside the workspace", moved=False),
        ExecutionResult(False, 6, "grasp failed", moved=True),
    ]
    session = ConsoleSession(cell, ConsoleConfig(record_dir=str(tmp_path)))

    async def script():
        await session.propose(INSTRUCTION)
        refused = await session.execute(session.observation_id)
        await session.propose(INSTRUCTION)
        failed = await session.execute(session.observation_id)
        return refused, failed

    refused, failed = run(script())
    assert not refused["recorded"] and refused["state"]["error"] and refused["state"]["episode"]["steps"] == 0
    assert failed["recorded"] and failed["state"]["episode"]["outcomes"][0]["error_code"] == 6
    assert "grasp failed" in failed["state"]["message"]


def test_episode_rules(tmp_path):
    cell = ScriptedCellDouble()
    session = ConsoleSession(cell, ConsoleConfig(record_dir=str(tmp_path)))
    with pytest.raises(ConsoleError, match="no executed step"):
        session.finish("done", 100)
    for outcome, score, message in (("great", 100, "outcome must be"), ("done", 101, r"score must be in \[0, 100\]")):
        with pytest.raises(ConsoleError, match=message):
            session.finish(outcome, score)
    run(session.propose(INSTRUCTION))
    run(session.execute(session.observation_id))
    with pytest.raises(ConsoleError, match="not saved") as unsaved:
        run(session.reset())
    assert unsaved.value.status == 409 and list_episodes(tmp_path) == []
    state = run(session.reset(seed=7, discard=True))
    assert state["episode"]["steps"] == 0 and state["cell"]["seed"] == 7 and state["observation_id"] is None


def test_stop_cancels_the_running_execution(tmp_path):
    cell = ScriptedCellDouble()
    cell.hold = True
    session = ConsoleSession(cell, ConsoleConfig(record_dir=str(tmp_path)))

    async def script():
        await session.propose(INSTRUCTION)
        running = asyncio.ensure_future(session.execute(session.observation_id))
        await asyncio.sleep(0.05)
        assert session.state()["executing"]["source"] == "policy"
        with pytest.raises(ConsoleError, match="busy"):
            await session.propose(INSTRUCTION)
        stopped = await session.stop()
        return stopped, await running

    stopped, result = run(script())
    assert stopped["stopped"] and result["result"]["error_code"] == 8 and not result["result"]["success"]
    assert result["state"]["executing"] is None


def test_the_web_api_guards_what_moves_the_arm(tmp_path):
    cell = ScriptedCellDouble()
    session = ConsoleSession(cell, ConsoleConfig(record_dir=str(tmp_path)))

    async def script():
        async with TestClient(TestServer(make_app(session))) as client:
            page = await client.get("/")
            assert "cliport console" in await page.text()
            assert (await client.get("/static/console.js")).status == 200
            assert (await client.get("/static/../session.py")).status == 404
            # a form post (no JSON) and a post from another site's page are refused: nothing proposed, nothing moved
            form = await client.post("/api/propose", data={"instruction": INSTRUCTION})
            assert form.status == 415
            foreign = await client.post(
                "/api/propose", json={"instruction": INSTRUCTION}, headers={"Origin": "http://elsewhere.example"}
            )
            assert foreign.status == 403 and "refused" in (await foreign.json())["error"]
            assert cell.proposals == 0
            bad = await client.post("/api/propose", json={"instruction": "   "})
            assert bad.status == 400 and "empty" in (await bad.json())["error"]
            state = await (await client.post("/api/propose", json={"instruction": INSTRUCTION})).json()
            png = await client.get(f"/api/observation/{state['observation_id']}/pick.png")
            assert png.status == 200 and (await png.read())[:4] == b"\x89PNG"
            assert (await client.get("/api/observation/99/color.png")).status == 404
            socket = await client.ws_connect("/api/events")
            first = await socket.receive_json()
            assert first["observation_id"] == state["observation_id"]
            stale = await client.post("/api/execute", json={"observation_id": state["observation_id"] - 1})
            assert stale.status == 409
            done = await (await client.post("/api/execute", json={"observation_id": state["observation_id"]})).json()
            pushed = [await socket.receive_json() for _ in range(2)]  # "executing", then the result
            assert pushed[0]["executing"]["source"] == "policy" and pushed[1]["episode"]["steps"] == 1
            saved = await client.post("/api/episode", json={"outcome": "done", "score": 100})
            await socket.close()
            return done, await saved.json()

    done, saved = run(script())
    assert done["result"]["success"] and len(cell.executed) == 1
    assert load_episode(saved["path"]).steps[0].source == "policy"


def test_config_is_validated():
    with pytest.raises(ValueError, match="task must be lower-case"):
        ConsoleConfig(task="My Task")
    with pytest.raises(ValueError, match="split must be"):
        ConsoleConfig(split="holdout")
