"""The operator console in a real browser against the simulated bringup: headless Chromium (Debian's, driven by
selenium through chromedriver) loads the page that `cliport console` serves for `cliport sim --serve`, types the
instruction, executes the policy's proposal, corrects the next step by clicking on the view, and marks the
episode done. The test then reads the simulator's score and the recorded episode."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from cliport_ros.data import list_episodes, load_episode
from cliport_ros.geometry.workspace import Workspace

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# put-block-in-bowl-seen-colors, val seed 19: "put the yellow blocks in a green bowl", two blocks (the oracle's
# two steps): the policy takes one step, the operator's correction the other.
SEED = 19
SCALE = 2  # screen pixels per view pixel (console.js)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
        reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], key: str, timeout: float = 180.0) -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen(
        [sys.executable, "-m", "cliport_ros.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ),
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        if line.startswith("{") and key in json.loads(line):
            return process, json.loads(line)
    process.kill()
    raise AssertionError(f"`cliport {' '.join(args)}` did not start (exit {process.poll()})")


def _state(url: str) -> dict:
    with urllib.request.urlopen(url + "api/state", timeout=10) as reply:
        return json.loads(reply.read())


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--window-size=1200,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_an_operator_executes_a_proposal_corrects_a_step_and_records_the_episode(tmp_path, ros_context, browser):
    from rclpy.node import Node
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from cliport_ros.srv import OracleAction

    record = tmp_path / "recorded"
    sim, _ = _start(
        ["sim", "--serve", "--split", "val", "--seed", str(SEED), "--device", "cpu", "--camera-rate", "2"], "serving"
    )
    console = None
    try:
        port = _free_port()
        console, started = _start(["console", "--port", str(port), "--record", str(record)], "console", 60)
        url = started["console"]
        assert url == f"http://127.0.0.1:{port}/"
        wait = WebDriverWait(browser, 120, poll_frequency=0.2)
        browser.get(url)
        wait.until(lambda d: d.find_element(By.ID, "connection").text == "connected")
        wait.until(lambda d: f"seed {SEED}" in d.find_element(By.ID, "cell").text)
        instruction = _state(url)["cell"]["instruction"]
        assert instruction == "put the yellow blocks in a green bowl"

        # 1. the policy's proposal, executed as it is
        browser.find_element(By.ID, "instruction").send_keys(instruction)
        browser.find_element(By.ID, "propose").click()
        execute = browser.find_element(By.ID, "execute-proposal")
        wait.until(lambda d: execute.is_enabled())
        proposal = _state(url)["proposal"]
        execute.click()
        wait.until(lambda d: "1 step(s) recorded" in d.find_element(By.ID, "episode").text)
        after_policy = _state(url)["cell"]
        assert after_policy["step"] == 1

        # 2. a correction: the oracle plays the operator's eyes, the clicks go through the page
        browser.find_element(By.ID, "propose").click()
        wait.until(lambda d: execute.is_enabled())
        node = Node("operator_eyes", context=ros_context)
        from conftest import spin_until
        from rclpy.executors import SingleThreadedExecutor

        executor = SingleThreadedExecutor(context=ros_context)
        executor.add_node(node)
        client = node.create_client(OracleAction, "/sim/oracle_action")
        assert spin_until(executor, client.service_is_ready, 30)
        future = client.call_async(OracleAction.Request())
        assert spin_until(executor, future.done, 30) and future.result().success, future.result()
        oracle = future.result().action
        workspace = Workspace()
        pick = workspace.xyz_to_pixel((oracle.pick.position.x, oracle.pick.position.y, 0))
        place = workspace.xyz_to_pixel((oracle.place.position.x, oracle.place.position.y, 0))
        executor.shutdown()
        node.destroy_node()
        view = browser.find_element(By.ID, "view")
        width, height = view.size["width"], view.size["height"]
        for row, col in (pick, place):
            # offsets from the canvas centre, to the middle of the view pixel
            x = (col + 0.5) * width / (width // SCALE) - width / 2
            y = (row + 0.5) * height / (height // SCALE) - height / 2
            ActionChains(browser).move_to_element_with_offset(view, round(x), round(y)).click().perform()
        wait.until(lambda d: d.find_element(By.ID, "execute-correction").is_enabled())
        assert (
            browser.find_element(By.ID, "correction").text
            == f"Pick: {pick[0]}, {pick[1]}, place: {place[0]}, {place[1]}"
        )
        browser.find_element(By.ID, "execute-correction").click()
        wait.until(lambda d: "2 step(s) recorded (policy, operator)" in d.find_element(By.ID, "episode").text)
        after_operator = _state(url)["cell"]
        # the corrected step put the second yellow block in the green bowl: half the task's score
        assert after_operator["step"] == 2
        assert after_operator["score"] == pytest.approx(after_policy["score"] + 50.0)

        # 3. the operator marks the episode done with a score
        score = browser.find_element(By.ID, "score")
        score.clear()
        score.send_keys("90")
        browser.find_element(By.ID, "done").click()
        wait.until(lambda d: "last saved" in d.find_element(By.ID, "episode").text)
        assert "episode done (score 90, 2 steps)" in browser.find_element(By.ID, "message").text
    finally:
        for process in (console, sim):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
    (path,) = list_episodes(record)
    episode = load_episode(path)
    assert path.name == "put-block-in-bowl-seen-colors-train-000000.npz"
    assert [s.source for s in episode.steps] == ["policy", "operator"]
    assert [s.instruction for s in episode.steps] == [instruction, instruction]
    first, second = episode.steps
    assert list(first.pick_pixel) == proposal["pick_pixel"] and list(first.place_pixel) == proposal["place_pixel"]
    assert second.pick_pixel == pick and second.place_pixel == place
    assert episode.score == 90.0 and episode.info["outcome"] == "done"
    assert episode.info["cell"]["seed"] == SEED and episode.info["cell"]["score"] == after_operator["score"]
    assert second.reward == pytest.approx(0.5)
    # the recorded views are the fused top-down view: the table is seen, the two steps saw different scenes
    assert first.color.shape == (320, 160, 3) and first.color.mean() > 10
    assert (first.height != second.height).any()
