"""The CLIPort node: RGB-D cameras + instructions in, PickPlace decisions out, executed through an action.

Lifecycle: configure loads the checkpoint and warms the policy up; activate subscribes to the cameras and
the instruction topic and serves FollowInstruction. With ``autostart`` (the default) ``main()`` runs both
transitions at start-up, as a lifecycle manager would.

Work runs on one worker thread, fed by a queue: a message on ``/cliport/instruction`` is one step; a
FollowInstruction goal is up to ``max_steps`` steps. The executor threads only enqueue and relay, so the
node stays responsive (cancel, new images) while the policy runs or the arm moves.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import rclpy
from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String
from visualization_msgs.msg import MarkerArray

from cliport_ros.action import ExecutePickPlace, FollowInstruction
from cliport_ros.agent import AgentConfig, CameraFrame, Decider, DecisionCode, DecisionError, validate_instruction
from cliport_ros.geometry.workspace import Workspace
from cliport_ros.msg import PickPlace as PickPlaceMsg
from cliport_ros.ros.camera_inputs import CAMERA_PARAMETERS, CameraInputs
from cliport_ros.ros.conversions import nanoseconds_to_stamp, pick_place_to_msg, seconds_to_stamp
from cliport_ros.ros.images import array_to_image
from cliport_ros.ros.visualization import decision_markers, heatmap_to_rgb

STAGE_NAMES = {FollowInstruction.Feedback.PERCEIVE: "perceive", FollowInstruction.Feedback.PREDICT: "predict",
               FollowInstruction.Feedback.EXECUTE: "execute"}

PolicyFactory = Callable[[str, str], Any]


def load_policy(checkpoint: str, device: str) -> Any:
    """The real loading path: a checkpoint folder (safetensors + JSON), or the shipped default when empty."""
    from cliport_ros.model import Policy
    from cliport_ros.resources import DEFAULT_CHECKPOINT, checkpoint_path

    path = checkpoint or str(checkpoint_path(DEFAULT_CHECKPOINT))
    return Policy.load(path, device=device)


@dataclass
class Job:
    """One instruction to carry out, from the topic (one step) or from a FollowInstruction goal."""

    instruction: Any
    max_steps: int
    execute: bool
    goal_handle: Any = None
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    enqueued: float = field(default_factory=time.monotonic)

    def cancelled(self) -> bool:
        return self.goal_handle is not None and self.goal_handle.is_cancel_requested


class CliportNode(LifecycleNode):
    def __init__(self, node_name: str = "cliport_node", *, context=None, policy_factory: PolicyFactory | None = None,
                 parameter_overrides: list[Parameter] | None = None) -> None:
        super().__init__(node_name, context=context, parameter_overrides=parameter_overrides or [])
        self._policy_factory = policy_factory or load_policy
        ws = Workspace()
        self._declare({
            "checkpoint": "", "device": "auto", "warm_up": True, **CAMERA_PARAMETERS, "max_image_age": 2.0,
            "base_frame": ws.frame_id,
            "workspace.x_min": ws.x_min, "workspace.x_max": ws.x_max, "workspace.y_min": ws.y_min,
            "workspace.y_max": ws.y_max, "workspace.z_min": ws.z_min, "workspace.z_max": ws.z_max,
            "workspace.pixel_size": ws.pixel_size, "workspace_margin": 0.0,
            "primitive": "pick_place", "min_confidence": 0.0, "max_instruction_length": 1000, "max_steps": 10,
            "execute": True, "execute_action": "execute_pick_place", "server_wait_timeout": 5.0,
            "execute_timeout": 120.0, "on_busy": "queue", "max_queue": 10, "publish_visualization": True,
        })
        self.policy: Any = None
        self.decider: Optional[Decider] = None
        self.workspace = ws
        self.inputs: Optional[CameraInputs] = None
        self._queue: "queue.Queue[Optional[Job]]" = queue.Queue()
        self._busy = threading.Event()
        self._worker: Optional[threading.Thread] = None
        self._active = False
        self._group = ReentrantCallbackGroup()
        self.decisions_published = 0
        self.last_timings: dict[str, float] = {}
        self.last_error = ""

    # ----- parameters -------------------------------------------------------------------------------------
    def _declare(self, defaults: dict[str, Any]) -> None:
        for name, value in defaults.items():
            self.declare_parameter(name, value)

    def p(self, name: str) -> Any:
        return self.get_parameter(name).value

    def read_config(self) -> tuple[Workspace, AgentConfig]:
        """Parameters -> validated core configs; ValueError names the parameter."""
        try:
            ws = Workspace(**{k: float(self.p(f"workspace.{k}")) for k in
                              ("x_min", "x_max", "y_min", "y_max", "z_min", "z_max", "pixel_size")},
                           frame_id=self.p("base_frame"))
        except ValueError as exc:
            raise ValueError(f"parameter workspace.*/base_frame: {exc}") from exc
        try:
            agent = AgentConfig(max_instruction_length=int(self.p("max_instruction_length")),
                                max_image_age=float(self.p("max_image_age")),
                                min_confidence=float(self.p("min_confidence")),
                                workspace_margin=float(self.p("workspace_margin")),
                                primitive=str(self.p("primitive")))
        except ValueError as exc:
            raise ValueError(f"parameter {exc}") from exc
        if self.p("on_busy") not in ("queue", "reject"):
            raise ValueError(f"parameter on_busy must be 'queue' or 'reject', got {self.p('on_busy')!r}")
        if self.p("device") not in ("auto", "cpu", "cuda") and not str(self.p("device")).startswith("cuda:"):
            raise ValueError(f"parameter device must be auto, cpu or cuda[:N], got {self.p('device')!r}")
        if int(self.p("max_steps")) < 1 or int(self.p("max_queue")) < 1:
            raise ValueError("parameters max_steps and max_queue must be >= 1")
        return ws, agent

    # ----- lifecycle --------------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.workspace, agent_config = self.read_config()
            self.inputs = CameraInputs(self, self.workspace.frame_id)
            t0 = time.perf_counter()
            self.policy = self._policy_factory(self.p("checkpoint"), self.p("device"))
            if self.p("warm_up") and hasattr(self.policy, "warm_up"):
                self.policy.warm_up()
            self.get_logger().info(f"policy ready in {time.perf_counter() - t0:.1f} s")
        except Exception as exc:  # configure fails with the reason; main() exits non-zero
            self.last_error = f"configure failed: {exc}"
            self.get_logger().error(self.last_error)
            return TransitionCallbackReturn.FAILURE
        self.decider = Decider(self.policy, self.workspace, agent_config)
        self.pub_pick_place = self.create_publisher(PickPlaceMsg, "/cliport/pick_place", 10)
        self.pub_pick_heatmap = self.create_publisher(Image, "/cliport/pick_heatmap", 1)
        self.pub_place_heatmap = self.create_publisher(Image, "/cliport/place_heatmap", 1)
        self.pub_top_down = self.create_publisher(Image, "/cliport/top_down", 1)
        self.pub_markers = self.create_publisher(MarkerArray, "/cliport/markers", 1)
        self.pub_status = self.create_publisher(String, "/cliport/status", 10)
        self.execute_client = ActionClient(self, ExecutePickPlace, self.p("execute_action"),
                                           callback_group=self._group)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.inputs.subscribe(callback_group=self._group)
        self.create_subscription(String, "/cliport/instruction", self._on_instruction, 10,
                                 callback_group=MutuallyExclusiveCallbackGroup())
        self.follow_server = ActionServer(
            self, FollowInstruction, "follow_instruction", self._follow_execute,
            goal_callback=self._follow_goal, cancel_callback=lambda _: CancelResponse.ACCEPT,
            callback_group=self._group)
        self._active = True
        self._worker = threading.Thread(target=self._work, name="cliport_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"active: cameras {[t.colour for t in self.inputs.topics]}, execute={self.p('execute')} "
            f"via '{self.p('execute_action')}'")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_worker()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_worker()
        return TransitionCallbackReturn.SUCCESS

    def stop_worker(self) -> None:
        self._active = False
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=30)
            self._worker = None

    # ----- inputs -----------------------------------------------------------------------------------------
    def _status(self, text: str, error: bool = False) -> None:
        # rclpy ties a severity to each logging call site, so each severity has its own line.
        if error:
            self.get_logger().error(text)
        else:
            self.get_logger().info(text)
        self.pub_status.publish(String(data=text))
        if error:
            self.last_error = text

    def _on_instruction(self, msg: String) -> None:
        try:
            validate_instruction(msg.data, int(self.p("max_instruction_length")))
        except DecisionError as exc:
            self._status(f"instruction rejected: {exc.message}", error=True)
            return
        job = Job(msg.data, max_steps=1, execute=bool(self.p("execute")))
        reason = self._admit(job)
        if reason:
            self._status(f"instruction '{msg.data[:80]}' rejected: {reason}", error=True)

    def _admit(self, job: Job) -> str:
        """Queue a job; return why it was refused, or '' when queued."""
        if self._busy.is_set() or not self._queue.empty():
            if self.p("on_busy") == "reject":
                return "busy with another instruction (on_busy is 'reject')"
            if self._queue.qsize() >= int(self.p("max_queue")):
                return f"queue full ({self.p('max_queue')} instructions waiting)"
        self._queue.put(job)
        return ""

    def _follow_goal(self, goal: FollowInstruction.Goal) -> GoalResponse:
        if self.p("on_busy") == "reject" and (self._busy.is_set() or not self._queue.empty()):
            self._status("FollowInstruction goal rejected: busy (on_busy is 'reject')", error=True)
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _follow_execute(self, goal_handle) -> FollowInstruction.Result:
        goal = goal_handle.request
        steps = int(goal.max_steps) or int(self.p("max_steps"))
        job = Job(goal.instruction, max_steps=steps, execute=bool(goal.execute), goal_handle=goal_handle)
        reason = self._admit(job)
        if reason:
            goal_handle.abort()
            return FollowInstruction.Result(success=False, error_code=DecisionCode.BUSY, message=reason)
        job.done.wait()
        result: FollowInstruction.Result = job.result
        if result.error_code == DecisionCode.CANCELED:
            goal_handle.canceled()
        elif result.success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return result

    # ----- the worker -------------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._busy.set()
            try:
                job.result = self._run_job(job)
            except Exception as exc:  # never let the worker die: the node must stay up
                job.result = FollowInstruction.Result(success=False, error_code=DecisionCode.INTERNAL_ERROR,
                                                      message=f"internal error: {type(exc).__name__}: {exc}")
                self._status(job.result.message, error=True)
            finally:
                self._busy.clear()
                job.done.set()

    def _feedback(self, job: Job, step: int, stage: int, latest: PickPlaceMsg | None, arm_stage: str = "") -> None:
        if job.goal_handle is None:
            return
        job.goal_handle.publish_feedback(FollowInstruction.Feedback(
            step=step, stage=stage, stage_name=STAGE_NAMES[stage], arm_stage=arm_stage,
            latest=latest or PickPlaceMsg()))

    def _run_job(self, job: Job) -> FollowInstruction.Result:
        result = FollowInstruction.Result(success=False, steps_taken=0)
        latest: PickPlaceMsg | None = None
        for step in range(1, job.max_steps + 1):
            if job.cancelled():
                return self._fail(result, DecisionCode.CANCELED, f"canceled before step {step}")
            self._feedback(job, step, FollowInstruction.Feedback.PERCEIVE, latest)
            try:
                frames = self.collect_frames()
                self._feedback(job, step, FollowInstruction.Feedback.PREDICT, latest)
                now = self.get_clock().now().nanoseconds * 1e-9
                decision = self.decider.decide(frames, job.instruction, now)
            except DecisionError as exc:
                return self._fail(result, exc.code, f"step {step}: {exc.message}")
            stamp = nanoseconds_to_stamp(decision.stamp_ns) if decision.stamp_ns is not None \
                else seconds_to_stamp(decision.stamp)
            latest = pick_place_to_msg(decision.pick_place, stamp)
            self._publish(decision, latest)
            # For benchmarks/bench_ros_overhead.py: where the time of one decision went.
            self.last_timings = dict(decision.timings, received_to_published_s=time.monotonic() - job.enqueued)
            if job.execute:
                self._feedback(job, step, FollowInstruction.Feedback.EXECUTE, latest)
                ok, message = self._execute(job, step, latest)
                if not ok:
                    result.steps.append(latest)
                    result.steps_taken = step
                    code = DecisionCode.CANCELED if job.cancelled() else DecisionCode.EXECUTION_FAILED
                    return self._fail(result, code, f"step {step}: {message}")
            result.steps.append(latest)
            result.steps_taken = step
        result.success, result.error_code = True, DecisionCode.SUCCESS
        result.message = f"{result.steps_taken} step(s) for '{job.instruction}'" + \
            ("" if job.execute else " (predicted only, execute is false)")
        self._status(result.message)
        return result

    def _fail(self, result: FollowInstruction.Result, code: DecisionCode, message: str) -> FollowInstruction.Result:
        result.success, result.error_code, result.message = False, int(code), message
        self._status(message, error=code != DecisionCode.CANCELED)
        return result

    @property
    def cameras(self):
        return self.inputs.cameras if self.inputs is not None else []

    def collect_frames(self) -> list[CameraFrame]:
        return self.inputs.frames()

    def _publish(self, decision, msg: PickPlaceMsg) -> None:
        self.pub_pick_place.publish(msg)
        self.decisions_published += 1
        if not self.p("publish_visualization"):
            return
        header = Header(stamp=msg.header.stamp, frame_id=self.workspace.frame_id)
        output = decision.output
        self.pub_top_down.publish(array_to_image(decision.view.colour, "rgb8", header))
        self.pub_pick_heatmap.publish(array_to_image(heatmap_to_rgb(output.pick_heatmap), "rgb8", header))
        self.pub_place_heatmap.publish(array_to_image(heatmap_to_rgb(output.place_heatmap), "rgb8", header))
        self.pub_markers.publish(decision_markers(decision.pick_place, self.workspace, header))

    def _execute(self, job: Job, step: int, msg: PickPlaceMsg) -> tuple[bool, str]:
        """Send one PickPlace to the arm and wait (on this worker thread) for the result."""
        client = self.execute_client
        if not client.wait_for_server(timeout_sec=float(self.p("server_wait_timeout"))):
            return False, (f"arm controller action '{self.p('execute_action')}' is not available "
                           f"(waited {self.p('server_wait_timeout')} s)")
        done = threading.Event()
        holder: dict[str, Any] = {}

        def on_feedback(feedback_msg) -> None:
            self._feedback(job, step, FollowInstruction.Feedback.EXECUTE, msg, feedback_msg.feedback.stage_name)

        def on_goal(future) -> None:
            holder["handle"] = future.result()
            if not holder["handle"].accepted:
                done.set()
                return
            holder["handle"].get_result_async().add_done_callback(lambda f: (holder.update(result=f.result()),
                                                                             done.set()))

        client.send_goal_async(ExecutePickPlace.Goal(pick_place=msg), feedback_callback=on_feedback) \
            .add_done_callback(on_goal)
        deadline = time.monotonic() + float(self.p("execute_timeout"))
        cancel_sent = False
        while not done.wait(0.05):
            if (job.cancelled() or time.monotonic() > deadline) and not cancel_sent and "handle" in holder:
                holder["handle"].cancel_goal_async()
                cancel_sent = True
                deadline = min(deadline, time.monotonic() + 10.0)
            elif time.monotonic() > deadline + 10.0:
                return False, f"arm did not answer within execute_timeout ({self.p('execute_timeout')} s)"
        if "result" not in holder:
            return False, "arm controller rejected the goal"
        response = holder["result"]
        res = response.result
        if response.status == GoalStatus.STATUS_SUCCEEDED and res.success:
            return True, res.message
        if cancel_sent and not job.cancelled():
            return False, f"arm timed out after execute_timeout ({self.p('execute_timeout')} s): {res.message}"
        return False, f"arm failed (code {res.error_code}): {res.message}"


def main(argv: list[str] | None = None) -> int:
    """``ros2 run cliport_ros cliport_node --ros-args --params-file config/cliport_node.yaml``."""
    rclpy.init(args=argv if argv is not None else sys.argv)
    node = CliportNode()
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    code = 0
    try:
        if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            node.get_logger().fatal(node.last_error or "configure failed")
            return 1
        node.trigger_activate()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.stop_worker()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
