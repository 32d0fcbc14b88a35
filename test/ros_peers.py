"""Test peers: a small node that serves both actions and publishes PickPlace, usable in-process or as a
separate process (``python test/ros_peers.py``). Its behaviour is scripted by the goal's instruction:
"hold" waits for a cancel; "fail" fails at the grasp (GRASP_FAILED); anything else completes after
STAGE_SECONDS per stage (a stand-in for arm
motion: feedback published before the client has processed the goal response is dropped by rclpy's
ActionClient, so a server that finishes instantly would lose its first feedback)."""

from __future__ import annotations

import sys
import threading
import time

import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node

from cliport_ros.action import ExecutePickPlace, FollowInstruction
from cliport_ros.msg import PickPlace

STAGES = ["approach", "grasp", "lift", "move", "release", "retreat"]
STAGE_SECONDS = 0.05


def sample_pick_place(instruction: str, k: int = 0) -> PickPlace:
    msg = PickPlace()
    msg.header.frame_id = "base_link"
    msg.header.stamp.sec = 100 + k
    msg.header.stamp.nanosec = 250
    msg.pick.position.x, msg.pick.position.y, msg.pick.position.z = 0.4 + 0.01 * k, -0.2, 0.02
    msg.place.position.x, msg.place.position.y, msg.place.position.z = 0.6, 0.25 - 0.01 * k, 0.03
    msg.place.orientation.z, msg.place.orientation.w = 0.38268343236, 0.92387953251
    msg.pick_confidence = 0.75
    msg.place_confidence = 0.5
    msg.instruction = instruction
    msg.primitive = PickPlace.PRIMITIVE_PICK_PLACE
    return msg


class PeerNode(Node):
    def __init__(self, context=None, name: str = "test_peer"):
        super().__init__(name, context=context)
        group = ReentrantCallbackGroup()
        self.cancel_seen = threading.Event()
        self.executions: list[str] = []  # the instruction of every ExecutePickPlace goal that ran
        self.execute_server = ActionServer(
            self,
            ExecutePickPlace,
            "peer/execute_pick_place",
            self._execute,
            goal_callback=lambda goal: GoalResponse.ACCEPT,
            cancel_callback=self._cancel,
            callback_group=group,
        )
        self.follow_server = ActionServer(
            self,
            FollowInstruction,
            "peer/follow_instruction",
            self._follow,
            goal_callback=lambda goal: GoalResponse.ACCEPT,
            cancel_callback=self._cancel,
            callback_group=group,
        )
        self.publisher = self.create_publisher(PickPlace, "peer/pick_place", 10)

    def _cancel(self, goal_handle) -> CancelResponse:
        self.cancel_seen.set()
        return CancelResponse.ACCEPT

    def _wait_for_cancel(self, goal_handle, timeout: float = 20.0) -> bool:
        """Until this goal is cancelled (rclpy marks it only after the cancel callback has returned)."""
        deadline = time.monotonic() + timeout
        while not goal_handle.is_cancel_requested and time.monotonic() < deadline:
            self.cancel_seen.wait(0.05)
        return goal_handle.is_cancel_requested

    def _execute(self, goal_handle):
        decision = goal_handle.request.pick_place
        self.executions.append(decision.instruction)
        result = ExecutePickPlace.Result()
        for index, name in enumerate(STAGES, start=1):
            time.sleep(STAGE_SECONDS)
            feedback = ExecutePickPlace.Feedback(stage=index, stage_name=name)
            goal_handle.publish_feedback(feedback)
            if decision.instruction == "fail" and name == "grasp":
                goal_handle.abort()
                result.success, result.error_code = False, ExecutePickPlace.Result.GRASP_FAILED
                result.message = "suction found nothing to pick"
                return result
            if decision.instruction == "hold" and self._wait_for_cancel(goal_handle):
                goal_handle.canceled()
                result.success, result.error_code = False, ExecutePickPlace.Result.CANCELED
                result.message = f"canceled during {name}"
                return result
        goal_handle.succeed()
        result.success, result.error_code = True, ExecutePickPlace.Result.SUCCESS
        result.message = f"executed pick at x={decision.pick.position.x:.3f} for '{decision.instruction}'"
        return result

    def _follow(self, goal_handle):
        goal = goal_handle.request
        result = FollowInstruction.Result()
        steps = goal.max_steps or 1
        for step in range(1, steps + 1):
            latest = sample_pick_place(goal.instruction, step)
            for stage, name in ((1, "perceive"), (2, "predict"), (3, "execute")):
                time.sleep(STAGE_SECONDS)
                goal_handle.publish_feedback(
                    FollowInstruction.Feedback(
                        step=step,
                        stage=stage,
                        stage_name=name,
                        arm_stage="approach" if stage == 3 else "",
                        latest=latest,
                    )
                )
            if goal.instruction == "hold" and self._wait_for_cancel(goal_handle):
                goal_handle.canceled()
                result.error_code, result.message = FollowInstruction.Result.CANCELED, "canceled"
                result.steps_taken = step - 1
                return result
            result.steps.append(latest)
        goal_handle.succeed()
        result.success, result.steps_taken = True, steps
        result.error_code, result.message = FollowInstruction.Result.SUCCESS, f"{steps} steps, execute={goal.execute}"
        return result


def main() -> int:
    """Serve both actions and publish one PickPlace a tenth of a second until stdin closes."""
    rclpy.init()
    node = PeerNode(name="test_peer_process")
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    counter = [0]

    def publish():
        node.publisher.publish(sample_pick_place("put the red block in the green bowl", counter[0]))
        counter[0] += 1

    node.create_timer(0.1, publish)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    print("ready", flush=True)
    try:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.1)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
