"""The CLIPort node: RGB-D cameras + instructions in, PickPlace decisions out, executed through an action.

Lifecycle (rclpy LifecycleNode): configure loads the checkpoint, warms the policy up and creates every
subscription, publisher and the FollowInstruction server once; activate starts the worker and the lifecycle
publishers; deactivate stops the worker (the step under way is cancelled on the arm, queued instructions end
with INACTIVE) and the node refuses work with a reason until it is activated again; cleanup and shutdown
destroy what configure created. ``main()`` configures and activates at start-up, as a lifecycle manager would.

Work runs on one worker thread, fed by a queue: a message on ``/cliport/instruction`` is one step; a
FollowInstruction goal is up to ``max_steps`` steps; a ``cliport/propose`` request (the operator console) is one
decision on the current view that moves nothing. The goal's execute callback is a coroutine that awaits the
worker's result, so queued goals hold no executor thread and the node stays responsive (cancel, new images,
the arm's answers) however many goals wait. Each step decides only on images taken after the instruction
arrived (or after the arm finished the previous step), waiting up to ``image_wait_timeout`` for them.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import rclpy
from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.task import Future
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String
from visualization_msgs.msg import MarkerArray

from cliport_ros.action import ExecutePickPlace, FollowInstruction
from cliport_ros.agent import (
    AgentConfig,
    CameraFrame,
    Decider,
    DecisionCode,
    DecisionError,
    quote_text,
    validate_instruction,
)
from cliport_ros.geometry.workspace import Workspace
from cliport_ros.msg import Execution
from cliport_ros.msg import PickPlace as PickPlaceMsg
from cliport_ros.perception.overlay import decision_overlay
from cliport_ros.ros.camera_inputs import CAMERA_PARAMETERS, CameraInputs
from cliport_ros.ros.conversions import nanoseconds_to_stamp, pick_place_to_msg, seconds_to_stamp
from cliport_ros.ros.images import array_to_image
from cliport_ros.ros.node_main import PARAMETER_ERRORS
from cliport_ros.ros.parameters import ParameterSpec, declare
from cliport_ros.ros.visualization import decision_markers, heatmap_to_rgb
from cliport_ros.srv import Propose
from cliport_ros.types import PRIMITIVES

STAGE_NAMES = {
    FollowInstruction.Feedback.PERCEIVE: "perceive",
    FollowInstruction.Feedback.PREDICT: "predict",
    FollowInstruction.Feedback.EXECUTE: "execute",
}

PolicyFactory = Callable[[str, str], Any]


def load_policy(checkpoint: str, device: str) -> Any:
    """The real loading path: a checkpoint folder (safetensors + JSON), or the shipped default when empty."""
    from cliport_ros.model import Policy
    from cliport_ros.resources import DEFAULT_CHECKPOINT, checkpoint_path

    path = checkpoint or str(checkpoint_path(DEFAULT_CHECKPOINT))
    return Policy.load(path, device=device)


#: Instruction topic QoS: reliable and deep, so a burst is queued or refused one by one, never overwritten.
INSTRUCTION_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
#: Seconds stop_worker waits for the worker; it is a daemon, so a policy call that outlasts this cannot hold exit.
WORKER_JOIN_TIMEOUT = 3.0


@dataclass
class Job:
    """One instruction to carry out, from the topic (one step) or from a FollowInstruction goal."""

    instruction: Any
    max_steps: int
    execute: bool
    not_before_ns: int  # ROS time the instruction arrived: only images taken at or after it are used
    goal_handle: Any = None
    future: Future | None = None  # completed with the result; the goal's execute coroutine awaits it
    enqueued: float = field(default_factory=time.monotonic)
    propose: bool = False  # a cliport/propose request: one decision (or observation), nothing executed
    run_policy: bool = True  # with propose: False returns the observation alone (demonstration mode)

    def cancelled(self) -> bool:
        return self.goal_handle is not None and self.goal_handle.is_cancel_requested


def _stamp(seconds: float, nanoseconds: int | None) -> Any:
    """The stamp of the images a decision or observation came from: exact where the frames carried it."""
    return nanoseconds_to_stamp(nanoseconds) if nanoseconds is not None else seconds_to_stamp(seconds)


def _cliport_node_parameters() -> list[ParameterSpec]:
    ws, agent, cam = Workspace(), AgentConfig(), CAMERA_PARAMETERS
    spec = ParameterSpec
    seconds = {"minimum": 0.0, "maximum": 3600.0}
    return [
        spec(
            "checkpoint",
            "",
            "checkpoint folder (model.safetensors + config.json); empty = the shipped model for task",
        ),
        spec(
            "task",
            "",
            "the task the cell works on; with an empty checkpoint, the shipped model trained on it (else the "
            "default shipped model)",
        ),
        spec("device", "auto", "auto, cpu, cuda or cuda:N"),
        spec("warm_up", True, "run the policy at configure so the first decision is not slow"),
        spec("camera_names", cam["camera_names"], "one entry per RGB-D camera"),
        spec(
            "camera_namespaces",
            cam["camera_namespaces"],
            "topic namespace per camera (RealSense default: /camera/camera)",
        ),
        spec("color_topic", cam["color_topic"], "color image topic, relative to the namespace"),
        spec("depth_topic", cam["depth_topic"], "depth image aligned to color, relative to the namespace"),
        spec("info_topic", cam["info_topic"], "camera_info topic, relative to the namespace"),
        spec(
            "camera_pose_source",
            cam["camera_pose_source"],
            "file: poses from camera_poses_file; tf: TF base_frame -> image frame at the image stamp",
            choices=("file", "tf"),
        ),
        spec("camera_poses_file", cam["camera_poses_file"], "camera rig YAML; empty = config/cameras_sim.yaml"),
        spec(
            "sync_slop",
            cam["sync_slop"],
            "s: color and depth stamps closer than this are one frame",
            minimum=0.0,
            maximum=1.0,
        ),
        spec("max_image_age", agent.max_image_age, "s: refuse to act on older images (0 disables)", **seconds),
        spec(
            "max_stamp_lead",
            agent.max_stamp_lead,
            "s an image stamp may lie ahead of this node's clock (clock skew)",
            minimum=0.0,
            maximum=10.0,
        ),
        spec(
            "image_wait_timeout",
            2.0,
            "s to wait for an image of every camera taken after the instruction arrived",
            **seconds,
        ),
        spec(
            "min_view_coverage",
            agent.min_view_coverage,
            "fraction of the workspace the cameras must see, else the step is refused",
            minimum=0.0,
            maximum=1.0,
        ),
        spec("base_frame", ws.frame_id, "frame of the workspace bounds and of every pose"),
        *[
            spec(f"workspace.{k}", getattr(ws, k), f"workspace {k.replace('_', ' ')} (m), in base_frame")
            for k in ("x_min", "x_max", "y_min", "y_max", "z_min", "z_max")
        ],
        spec("workspace.pixel_size", ws.pixel_size, "m per top-down pixel (the model's grid)"),
        spec(
            "workspace_margin", agent.workspace_margin, "m kept clear of the workspace edges", minimum=0.0, maximum=0.25
        ),
        spec("primitive", agent.primitive, "what executes the decisions (push: separating-piles)", choices=PRIMITIVES),
        spec(
            "min_confidence",
            agent.min_confidence,
            "stop a FollowInstruction when the policy is less sure than this",
            minimum=0.0,
            maximum=1.0,
        ),
        spec(
            "max_instruction_length",
            agent.max_instruction_length,
            "longer instructions are refused",
            minimum=1,
            maximum=100_000,
        ),
        spec("max_steps", 10, "FollowInstruction steps when the goal says 0", minimum=1, maximum=1000),
        spec("execute", True, "false: predict and publish only, never move the arm"),
        spec("execute_action", "execute_pick_place", "the arm's ExecutePickPlace action"),
        spec("server_wait_timeout", 5.0, "s for the arm's action server to answer a goal", **seconds),
        spec("execute_timeout", 120.0, "s for one pick-and-place before it is cancelled", **seconds),
        spec("on_busy", "queue", "instructions that arrive while one runs", choices=("queue", "reject")),
        spec("max_queue", 10, "instructions waiting at most", minimum=1, maximum=10_000),
        spec("max_queue_age", 30.0, "s an instruction may wait in the queue; older ones are refused", **seconds),
        spec("publish_visualization", True, "heatmaps, top-down view, markers"),
    ]


#: The CLIPort node's parameters: the one table (config/cliport_node.yaml and the README agree with it).
CLIPORT_NODE_PARAMETERS = _cliport_node_parameters()


class CliportNode(LifecycleNode):
    def __init__(
        self,
        node_name: str = "cliport_node",
        *,
        context=None,
        policy_factory: PolicyFactory | None = None,
        parameter_overrides: list[Parameter] | None = None,
        namespace: str | None = None,
    ) -> None:
        # Every topic, service and action name is relative: two cells run side by side in two namespaces.
        super().__init__(node_name, context=context, namespace=namespace, parameter_overrides=parameter_overrides or [])
        self._policy_factory = policy_factory or load_policy
        declare(self, CLIPORT_NODE_PARAMETERS)
        ws = Workspace()
        self.policy: Any = None
        self.decider: Decider | None = None
        self.workspace = ws
        self.inputs: CameraInputs | None = None
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._busy = threading.Event()
        self._stop = threading.Event()  # set on deactivate/shutdown: the step under way ends, the arm is stopped
        self._worker: threading.Thread | None = None
        self._active = False
        self._group = ReentrantCallbackGroup()
        self._entities: list[tuple[Callable[[Any], Any], Any]] = []  # (destroy, entity) made by configure
        # The worker publishes; destruction may come while a step is still under way (a shutdown whose join
        # timed out while the arm ran): publishing and destroying take this lock, and nothing is published
        # to an entity that is gone.
        self._publishing = threading.Lock()
        self._outputs_alive = False  # the configure-made publishers
        self._node_alive = True  # pub_status and the rest of the node
        self.pub_status = self.create_publisher(String, "cliport/status", 10)  # also reports refusals when inactive
        self.decisions_published = 0
        self.last_timings: dict[str, float] = {}
        self.last_error = ""

    # ----- parameters -------------------------------------------------------------------------------------
    def p(self, name: str) -> Any:
        return self.get_parameter(name).value

    def read_config(self) -> tuple[Workspace, AgentConfig]:
        """Parameters -> validated core configs; ValueError names the parameter."""
        try:
            ws = Workspace(
                **{
                    k: float(self.p(f"workspace.{k}"))
                    for k in ("x_min", "x_max", "y_min", "y_max", "z_min", "z_max", "pixel_size")
                },
                frame_id=self.p("base_frame"),
            )
        except ValueError as exc:
            raise ValueError(f"parameter workspace.*/base_frame: {exc}") from exc
        try:
            agent = AgentConfig(
                max_instruction_length=int(self.p("max_instruction_length")),
                max_image_age=float(self.p("max_image_age")),
                max_stamp_lead=float(self.p("max_stamp_lead")),
                min_view_coverage=float(self.p("min_view_coverage")),
                min_confidence=float(self.p("min_confidence")),
                workspace_margin=float(self.p("workspace_margin")),
                primitive=str(self.p("primitive")),
            )
        except ValueError as exc:
            raise ValueError(f"parameter {exc}") from exc
        if self.p("on_busy") not in ("queue", "reject"):
            raise ValueError(f"parameter on_busy must be 'queue' or 'reject', got {self.p('on_busy')!r}")
        if self.p("device") not in ("auto", "cpu", "cuda") and not str(self.p("device")).startswith("cuda:"):
            raise ValueError(f"parameter device must be auto, cpu or cuda[:N], got {self.p('device')!r}")
        if int(self.p("max_steps")) < 1 or int(self.p("max_queue")) < 1:
            raise ValueError("parameters max_steps and max_queue must be >= 1")
        for name in ("image_wait_timeout", "server_wait_timeout", "execute_timeout", "max_queue_age"):
            if not 0.0 < float(self.p(name)) <= 3600.0:
                raise ValueError(f"parameter {name} must be in (0, 3600] seconds, got {self.p(name)!r}")
        return ws, agent

    # ----- lifecycle --------------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.workspace, agent_config = self.read_config()
            self.inputs = CameraInputs(self, self.workspace.frame_id)
            t0 = time.perf_counter()
            checkpoint = self.p("checkpoint")
            if not checkpoint:
                from cliport_ros.resources import shipped_checkpoint_for

                path, matched = shipped_checkpoint_for(self.p("task"))
                checkpoint = str(path)
                why = f"trained on {self.p('task')}" if matched else "the default"
                if self.p("task") and not matched:
                    why = f"the default: no shipped model was trained on {self.p('task')!r}"
                self.get_logger().info(f"checkpoint: the shipped model {path.name} ({why})")
            self.checkpoint = checkpoint
            self.policy = self._policy_factory(checkpoint, self.p("device"))
            if self.p("warm_up") and hasattr(self.policy, "warm_up"):
                self.policy.warm_up()
            self.get_logger().info(f"policy ready in {time.perf_counter() - t0:.1f} s")
        except Exception as exc:  # configure fails with the reason; main() exits non-zero
            self.last_error = f"configure failed: {exc}"
            self.get_logger().error(self.last_error)
            return TransitionCallbackReturn.FAILURE
        self.decider = Decider(self.policy, self.workspace, agent_config)
        # Everything is created once here and destroyed in cleanup: an activate/deactivate cycle adds nothing,
        # so one instruction can never reach two subscriptions (or two servers) and move the arm twice.
        lifecycle = lambda pub: (self.destroy_lifecycle_publisher, pub)  # noqa: E731
        self.pub_pick_place = self.create_lifecycle_publisher(PickPlaceMsg, "cliport/pick_place", 10)
        self.pub_pick_heatmap = self.create_lifecycle_publisher(Image, "cliport/pick_heatmap", 1)
        self.pub_place_heatmap = self.create_lifecycle_publisher(Image, "cliport/place_heatmap", 1)
        self.pub_top_down = self.create_lifecycle_publisher(Image, "cliport/top_down", 1)
        self.pub_markers = self.create_lifecycle_publisher(MarkerArray, "cliport/markers", 1)
        self.pub_overlay = self.create_lifecycle_publisher(Image, "cliport/overlay", 1)
        self.pub_executions = self.create_lifecycle_publisher(Execution, "cliport/executions", 10)
        self._entities = [
            lifecycle(p)
            for p in (
                self.pub_pick_place,
                self.pub_pick_heatmap,
                self.pub_place_heatmap,
                self.pub_top_down,
                self.pub_markers,
                self.pub_overlay,
                self.pub_executions,
            )
        ]
        self.execute_client = ActionClient(self, ExecutePickPlace, self.p("execute_action"), callback_group=self._group)
        self.inputs.subscribe(callback_group=self._group)
        self.instruction_sub = self.create_subscription(
            String,
            "cliport/instruction",
            self._on_instruction,
            INSTRUCTION_QOS,
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        self.follow_server = ActionServer(
            self,
            FollowInstruction,
            "follow_instruction",
            self._follow_execute,
            goal_callback=self._follow_goal,
            cancel_callback=lambda _: CancelResponse.ACCEPT,
            callback_group=self._group,
        )
        self.propose_service = self.create_service(
            Propose, "cliport/propose", self._on_propose, callback_group=self._group
        )
        self._entities += [
            (self.destroy_service, self.propose_service),
            (lambda c: c.destroy(), self.execute_client),
            (lambda _: self.inputs.unsubscribe(), None),
            (self.destroy_subscription, self.instruction_sub),
            (lambda s: s.destroy(), self.follow_server),
        ]
        with self._publishing:
            self._outputs_alive = True
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="cliport_worker", daemon=True)
        self._worker.start()
        self._active = True
        self.get_logger().info(
            f"active: cameras {[t.color for t in self.inputs.topics]}, execute={self.p('execute')} "
            f"via '{self.p('execute_action')}'"
        )
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_worker("the node was deactivated")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy_entities()
        self.policy, self.decider = None, None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop_worker("the node is shutting down")
        self._destroy_entities()
        return TransitionCallbackReturn.SUCCESS

    def _destroy_entities(self) -> None:
        with self._publishing:
            self._outputs_alive = False
            for destroy, entity in reversed(self._entities):
                destroy(entity)
            self._entities = []

    def destroy_node(self) -> None:
        with self._publishing:
            self._node_alive = self._outputs_alive = False
        super().destroy_node()

    def _publish_to(self, publisher: Any, msg: Any, output: bool = True) -> None:
        """Publish unless the publisher was destroyed (see ``_publishing``)."""
        with self._publishing:
            if self._node_alive and (self._outputs_alive or not output):
                publisher.publish(msg)

    def stop_worker(self, reason: str = "the node is stopping") -> None:
        """End the step under way (its arm goal is cancelled), end queued jobs with INACTIVE, join the worker."""
        self._active = False
        self._stop.set()
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=WORKER_JOIN_TIMEOUT)
            self._worker = None
        while True:  # what the worker did not take
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                self._finish(
                    job,
                    FollowInstruction.Result(
                        success=False, error_code=DecisionCode.INACTIVE, message=f"not started: {reason}"
                    ),
                )

    # ----- inputs -----------------------------------------------------------------------------------------
    def _status(self, text: str, error: bool = False) -> None:
        # rclpy ties a severity to each logging call site, so each severity has its own line.
        if error:
            self.get_logger().error(text)
        else:
            self.get_logger().info(text)
        self._publish_to(self.pub_status, String(data=text), output=False)
        if error:
            self.last_error = text

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_instruction(self, msg: String) -> None:
        arrived = self._now_ns()
        if not self._active:
            self._status(f"instruction '{quote_text(msg.data)}' refused: the node is not active", error=True)
            return
        try:
            validate_instruction(msg.data, int(self.p("max_instruction_length")))
        except DecisionError as exc:
            self._status(f"instruction rejected: {exc.message}", error=True)
            return
        job = Job(msg.data, max_steps=1, execute=bool(self.p("execute")), not_before_ns=arrived)
        reason = self._admit(job)
        if reason:
            self._status(f"instruction '{quote_text(msg.data)}' rejected: {reason}", error=True)

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
        return GoalResponse.ACCEPT  # an inactive node accepts, and ends the goal with INACTIVE and the reason

    async def _follow_execute(self, goal_handle) -> FollowInstruction.Result:
        try:
            goal = goal_handle.request
            if not self._active:
                result = FollowInstruction.Result(
                    success=False,
                    error_code=DecisionCode.INACTIVE,
                    message="the node is not active (lifecycle): activate it first",
                )
                self._status(
                    f"FollowInstruction '{quote_text(goal.instruction)}' refused: {result.message}", error=True
                )
            else:
                steps = int(goal.max_steps) or int(self.p("max_steps"))
                job = Job(
                    goal.instruction,
                    max_steps=steps,
                    execute=bool(goal.execute),
                    goal_handle=goal_handle,
                    not_before_ns=self._now_ns(),
                    future=Future(executor=self.executor),
                )
                # A done callback makes the executor wake when the worker completes the future (a coroutine
                # awaiting a bare future is only resumed when something else wakes the executor).
                job.future.add_done_callback(lambda _: None)
                reason = self._admit(job)
                if reason:
                    result = FollowInstruction.Result(success=False, error_code=DecisionCode.BUSY, message=reason)
                else:
                    result = await job.future
        except Exception as exc:  # never an empty result: it would carry no reason
            result = FollowInstruction.Result(
                success=False,
                error_code=DecisionCode.INTERNAL_ERROR,
                message=f"internal error: {type(exc).__name__}: {exc}",
            )
            self._status(result.message, error=True)
        if result.error_code == DecisionCode.CANCELED and goal_handle.is_cancel_requested:
            goal_handle.canceled()
        elif result.success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return result

    def _on_propose(self, request: Propose.Request, response: Propose.Response) -> Propose.Response:
        """Queue one decision on images taken after the request; answer with it (or the refusal and why)."""
        from cliport_ros.ros.client import wait_for

        try:
            if not self._active:
                return self._refuse_proposal(
                    response, DecisionCode.INACTIVE, "the node is not active (lifecycle): activate it first"
                )
            if request.run_policy:
                try:
                    validate_instruction(request.instruction, int(self.p("max_instruction_length")))
                except DecisionError as exc:
                    return self._refuse_proposal(response, exc.code, exc.message)
            job = Job(
                request.instruction,
                max_steps=1,
                execute=False,
                not_before_ns=self._now_ns(),
                future=Future(),
                propose=True,
                run_policy=bool(request.run_policy),
            )
            reason = self._admit(job)
            if reason:
                return self._refuse_proposal(response, DecisionCode.BUSY, reason)
            # The worker answers within the image wait plus one decision; the margin covers a queued step.
            timeout = float(self.p("image_wait_timeout")) + float(self.p("execute_timeout"))
            if not wait_for(job.future, timeout):
                return self._refuse_proposal(response, DecisionCode.BUSY, f"no proposal within {timeout:.0f} s")
            return job.future.result()
        except Exception as exc:  # the service must answer with the reason, never raise into the executor
            return self._refuse_proposal(
                response, DecisionCode.INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}"
            )

    def _refuse_proposal(self, response: Propose.Response, code: DecisionCode, message: str) -> Propose.Response:
        response.success, response.error_code, response.message = False, int(code), message
        self._status(f"proposal refused: {message}", error=True)
        return response

    def _propose(self, job: Job) -> Propose.Response:
        """The worker's part of a proposal: the fused view, and the policy's decision on it when asked."""
        import json

        response = Propose.Response(workspace=json.dumps(self.workspace.to_dict(), sort_keys=True))
        try:
            frames = self.wait_for_frames(job.not_before_ns)
            now = self._now_ns() * 1e-9
            if job.run_policy:
                decision = self.decider.decide(frames, job.instruction, now)
                view, output, stamp = decision.view, decision.output, _stamp(decision.stamp, decision.stamp_ns)
            else:
                view, seconds, nanoseconds = self.decider.observe(frames, now)
                stamp = _stamp(seconds, nanoseconds)
        except DecisionError as exc:
            return self._refuse_proposal(response, exc.code, exc.message)
        header = Header(stamp=stamp, frame_id=self.workspace.frame_id)
        response.color = array_to_image(view.color, "rgb8", header)
        response.height = array_to_image(view.height.astype("float32"), "32FC1", header)
        if job.run_policy:
            latest = pick_place_to_msg(decision.pick_place, stamp)
            self._publish(decision, latest)
            response.pick_heatmap = array_to_image(output.pick_heatmap.astype("float32"), "32FC1", header)
            response.place_heatmap = array_to_image(output.place_heatmap.astype("float32"), "32FC1", header)
            response.proposal = latest
            response.pick_pixel = [int(v) for v in output.pick_pixel]
            response.place_pixel = [int(v) for v in output.place_pixel]
            response.place_rotation = float(output.place_rotation)
            response.message = f"proposal for '{quote_text(job.instruction)}'"
        else:
            response.message = "observation (no policy)"
        response.success, response.error_code = True, int(DecisionCode.SUCCESS)
        return response

    def _publish_execution(self, msg: PickPlaceMsg, ok: bool, code: int, message: str) -> None:
        execution = Execution(
            header=Header(stamp=self.get_clock().now().to_msg(), frame_id=self.workspace.frame_id),
            pick_place=msg,
            source=Execution.SOURCE_POLICY,
            success=ok,
            error_code=code,
            message=message,
        )
        self._publish_to(self.pub_executions, execution)

    # ----- the worker -------------------------------------------------------------------------------------
    def _finish(self, job: Job, result: Any) -> None:
        if job.future is not None and not job.future.done():
            job.future.set_result(result)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None or self._stop.is_set():
                if job is not None:
                    self._queue.put(job)  # stop_worker ends it with the reason
                return
            self._busy.set()
            try:
                result = self._propose(job) if job.propose else self._run_job(job)
            except Exception as exc:  # never let the worker die: the node must stay up
                kind = Propose.Response if job.propose else FollowInstruction.Result
                result = kind(
                    success=False,
                    error_code=DecisionCode.INTERNAL_ERROR,
                    message=f"internal error: {type(exc).__name__}: {exc}",
                )
                self._status(result.message, error=True)
            finally:
                self._busy.clear()
            self._finish(job, result)

    def _feedback(self, job: Job, step: int, stage: int, latest: PickPlaceMsg | None, arm_stage: str = "") -> None:
        if job.goal_handle is None:
            return
        job.goal_handle.publish_feedback(
            FollowInstruction.Feedback(
                step=step,
                stage=stage,
                stage_name=STAGE_NAMES[stage],
                arm_stage=arm_stage,
                latest=latest or PickPlaceMsg(),
            )
        )

    def _run_job(self, job: Job) -> FollowInstruction.Result:
        result = FollowInstruction.Result(success=False, steps_taken=0)
        waited = time.monotonic() - job.enqueued
        if waited > float(self.p("max_queue_age")):
            return self._fail(
                result,
                DecisionCode.BUSY,
                f"instruction expired: it waited {waited:.1f} s in the "
                f"queue (max_queue_age is {self.p('max_queue_age')} s)",
            )
        latest: PickPlaceMsg | None = None
        not_before_ns = job.not_before_ns
        for step in range(1, job.max_steps + 1):
            if job.cancelled():
                return self._fail(result, DecisionCode.CANCELED, f"canceled before step {step}")
            if self._stop.is_set():
                return self._fail(result, DecisionCode.INACTIVE, f"stopped before step {step}: the node is stopping")
            self._feedback(job, step, FollowInstruction.Feedback.PERCEIVE, latest)
            try:
                frames = self.wait_for_frames(not_before_ns)
                self._feedback(job, step, FollowInstruction.Feedback.PREDICT, latest)
                decision = self.decider.decide(frames, job.instruction, self._now_ns() * 1e-9)
            except DecisionError as exc:
                return self._fail(result, exc.code, f"step {step}: {exc.message}")
            stamp = _stamp(decision.stamp, decision.stamp_ns)
            latest = pick_place_to_msg(decision.pick_place, stamp)
            self._publish(decision, latest)
            outcome = f"step {step}: predicted only (execute is false)"
            # For benchmarks/bench_ros_overhead.py: where the time of one decision went.
            self.last_timings = dict(decision.timings, received_to_published_s=time.monotonic() - job.enqueued)
            if job.execute:
                self._feedback(job, step, FollowInstruction.Feedback.EXECUTE, latest)
                ok, message, code = self._execute(job, step, latest)
                self._publish_execution(latest, ok, code, message)
                outcome = f"step {step}: {'executed' if ok else 'failed'}: {message}"
                self._publish_overlay(decision, job.instruction, outcome, latest)
                if not ok:
                    result.steps.append(latest)
                    result.steps_taken = step
                    code = (
                        DecisionCode.CANCELED
                        if job.cancelled()
                        else DecisionCode.INACTIVE
                        if self._stop.is_set()
                        else DecisionCode.EXECUTION_FAILED
                    )
                    return self._fail(result, code, f"step {step}: {message}")
            else:
                self._publish_overlay(decision, job.instruction, outcome, latest)
            # The next step looks at the scene as the arm left it.
            not_before_ns = self._now_ns()
            result.steps.append(latest)
            result.steps_taken = step
        result.success, result.error_code = True, DecisionCode.SUCCESS
        result.message = f"{result.steps_taken} step(s) for '{quote_text(job.instruction)}'" + (
            "" if job.execute else " (predicted only, execute is false)"
        )
        self._status(result.message)
        return result

    def _fail(self, result: FollowInstruction.Result, code: DecisionCode, message: str) -> FollowInstruction.Result:
        result.success, result.error_code, result.message = False, int(code), message
        self._status(message, error=code != DecisionCode.CANCELED)
        return result

    @property
    def cameras(self):
        return self.inputs.cameras if self.inputs is not None else []

    def wait_for_frames(self, not_before_ns: int) -> list[CameraFrame]:
        """Frames of every camera taken at or after ``not_before_ns``, waiting up to image_wait_timeout."""
        return self.inputs.wait_for_frames(not_before_ns, float(self.p("image_wait_timeout")))

    def _publish(self, decision, msg: PickPlaceMsg) -> None:
        self._publish_to(self.pub_pick_place, msg)
        self.decisions_published += 1
        if not self.p("publish_visualization"):
            return
        header = Header(stamp=msg.header.stamp, frame_id=self.workspace.frame_id)
        output = decision.output
        self._publish_to(self.pub_top_down, array_to_image(decision.view.color, "rgb8", header))
        self._publish_to(self.pub_pick_heatmap, array_to_image(heatmap_to_rgb(output.pick_heatmap), "rgb8", header))
        self._publish_to(self.pub_place_heatmap, array_to_image(heatmap_to_rgb(output.place_heatmap), "rgb8", header))
        self._publish_to(self.pub_markers, decision_markers(decision.pick_place, self.workspace, header))

    def _publish_overlay(self, decision, instruction: str, outcome: str, msg: PickPlaceMsg) -> None:
        """The step's picture (perception/overlay.py), once its outcome is known; for RViz's Image display."""
        if not self.p("publish_visualization") or not self._outputs_alive:
            return
        output = decision.output
        picture = decision_overlay(
            decision.view.color,
            output.pick_heatmap,
            output.place_heatmap,
            output.pick_pixel,
            output.place_pixel,
            output.place_rotation,
            instruction,
            outcome,
        )
        header = Header(stamp=msg.header.stamp, frame_id=self.workspace.frame_id)
        self._publish_to(self.pub_overlay, array_to_image(picture, "rgb8", header))

    def _execute(self, job: Job, step: int, msg: PickPlaceMsg) -> tuple[bool, str, int]:
        """Send one PickPlace to the arm and wait (on this worker thread) for the result: (succeeded, why, the
        arm's ExecutePickPlace code, or its UNKNOWN when the arm never answered).

        No wait_for_server(): its readiness check needs matched counts that flicker while other processes
        create and destroy servers of the same name. The goal is sent, and the arm's answer decides."""
        client = self.execute_client
        done = threading.Event()
        lock = threading.Lock()
        holder: dict[str, Any] = {}

        def on_feedback(feedback_msg) -> None:
            self._feedback(job, step, FollowInstruction.Feedback.EXECUTE, msg, feedback_msg.feedback.stage_name)

        def on_goal(future) -> None:
            handle = future.result()
            with lock:
                holder["handle"] = handle
                abandoned = holder.get("abandoned", False)
            if abandoned and handle.accepted:
                handle.cancel_goal_async()  # answered after we gave up on it: it must not move the arm
                return
            if not handle.accepted:
                done.set()
                return
            handle.get_result_async().add_done_callback(lambda f: (holder.update(result=f.result()), done.set()))

        client.send_goal_async(ExecutePickPlace.Goal(pick_place=msg), feedback_callback=on_feedback).add_done_callback(
            on_goal
        )
        answer_deadline = time.monotonic() + float(self.p("server_wait_timeout"))
        deadline = time.monotonic() + float(self.p("execute_timeout"))
        cancel_sent = False
        while not done.wait(0.05):
            with lock:
                answered = "handle" in holder
                if not answered and time.monotonic() > answer_deadline:
                    holder["abandoned"] = True
            if not answered:
                if holder.get("abandoned"):
                    reason = (
                        f"arm controller action '{self.p('execute_action')}' did not answer the goal "
                        f"within server_wait_timeout ({self.p('server_wait_timeout')} s): is it running?"
                    )
                    return False, reason, ExecutePickPlace.Result.UNKNOWN
                continue
            stopping = job.cancelled() or self._stop.is_set()
            if (stopping or time.monotonic() > deadline) and not cancel_sent:
                holder["handle"].cancel_goal_async()
                cancel_sent = True
                deadline = min(deadline, time.monotonic() + (WORKER_JOIN_TIMEOUT if self._stop.is_set() else 10.0))
            elif cancel_sent and time.monotonic() > deadline:
                if self._stop.is_set():
                    return False, "the node is stopping; the arm was asked to cancel", ExecutePickPlace.Result.CANCELED
                return (
                    False,
                    f"arm did not answer within execute_timeout ({self.p('execute_timeout')} s)",
                    ExecutePickPlace.Result.TIMEOUT,
                )
        if "result" not in holder:
            return False, "arm controller rejected the goal", ExecutePickPlace.Result.BUSY
        response = holder["result"]
        res = response.result
        if (
            response.status == GoalStatus.STATUS_SUCCEEDED
            and res.success
            and res.error_code == ExecutePickPlace.Result.SUCCESS
        ):
            return True, res.message, int(res.error_code)
        if self._stop.is_set():
            return False, f"the node is stopping; the arm stopped: {res.message}", int(res.error_code)
        if job.cancelled():
            return (
                False,
                f"canceled; the arm stopped (code {res.error_code}): {res.message or 'no reason given'}",
                int(res.error_code),
            )
        if cancel_sent:
            return (
                False,
                f"arm timed out after execute_timeout ({self.p('execute_timeout')} s): {res.message}",
                int(res.error_code),
            )
        return False, f"arm failed (code {res.error_code}): {res.message or 'no reason given'}", int(res.error_code)


def main(argv: list[str] | None = None) -> int:
    """``ros2 run cliport_ros cliport_node --ros-args --params-file config/cliport_node.yaml``."""
    rclpy.init(args=argv if argv is not None else sys.argv)
    try:
        node = CliportNode()
    except PARAMETER_ERRORS as exc:
        print(f"cliport_node: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
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
        node.stop_worker("the node is shutting down")
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
