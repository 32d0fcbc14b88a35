"""The simulation bridge: a PyBullet cell whose topics look like a real one's.

Publishes each simulated camera like realsense2_camera (``<camera>/color/image_raw`` rgb8,
``<camera>/aligned_depth_to_color/image_raw`` 32FC1 metres, ``<camera>/color/camera_info``) and
``/joint_states``; serves ``ExecutePickPlace`` by running the pick-and-place primitive; resets episodes
(``/sim/reset_episode``) and reports them (``/sim/task_status``, latched), so an episode can be run through
ROS as the paper evaluates. ``/sim/oracle_action`` tells what the task's oracle would do next (for scripted
operators). With ``publish_instructions`` it also issues each step's instruction on
``/cliport/instruction``, playing the evaluator.

PyBullet is not thread-safe, and its EGL renderer's context belongs to the thread that created it: the
simulator lives on one thread of its own (``SimThread``), and ROS callbacks hand it work and wait.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Header, String

from cliport_ros.action import ExecutePickPlace
from cliport_ros.msg import TaskStatus
from cliport_ros.ros.conversions import pick_place_from_msg, pick_place_to_msg
from cliport_ros.ros.images import array_to_image, camera_info_from_model
from cliport_ros.ros.node_main import run_node
from cliport_ros.ros.parameters import ParameterSpec, declare
from cliport_ros.srv import OracleAction, ResetEpisode

STAGE_CODES = {
    "approach": ExecutePickPlace.Feedback.APPROACH,
    "grasp": ExecutePickPlace.Feedback.GRASP,
    "lift": ExecutePickPlace.Feedback.LIFT,
    "move": ExecutePickPlace.Feedback.MOVE,
    "release": ExecutePickPlace.Feedback.RELEASE,
    "retreat": ExecutePickPlace.Feedback.RETREAT,
}
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
SPLITS = ("train", "val", "test")


T = TypeVar("T")


class SimulatorStopped(RuntimeError):
    """The simulator thread was stopped: the call did not run (or its answer was abandoned)."""


class SimThread:
    """Runs every call on one dedicated thread; ``call`` blocks the caller until its function has run."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], Any], queue.Queue] | None] = queue.Queue()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pybullet", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, reply = job
            if self._stopped.is_set():  # queued before stop(): not run, its caller is told why
                reply.put((False, SimulatorStopped("the simulator stopped before this call ran")))
                continue
            try:
                reply.put((True, fn()))
            except BaseException as exc:  # handed back to the caller, raised there
                reply.put((False, exc))

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the simulator thread and return its value; SimulatorStopped once ``stop()`` was called."""
        if threading.current_thread() is self._thread:
            return fn()
        if self._stopped.is_set():
            raise SimulatorStopped("the simulator is stopped")
        reply: queue.Queue = queue.Queue(maxsize=1)
        self._jobs.put((fn, reply))
        while True:  # never wait forever: stop() must release every caller
            try:
                ok, value = reply.get(timeout=0.1)
                break
            except queue.Empty:
                if self._stopped.is_set() and not self._thread.is_alive():
                    raise SimulatorStopped("the simulator stopped before answering") from None
        if not ok:
            raise value
        return value

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        self._jobs.put(None)
        self._thread.join(timeout=timeout)


def make_environment(task: str, robot: str, renderer: str, cameras_file: str) -> Any:
    """The real simulator (imported here so that the module loads without pybullet for --help)."""
    from cliport_ros.perception.camera import load_camera_rig
    from cliport_ros.sim import SimEnvironment

    return SimEnvironment(task, robot=robot, renderer=renderer, rig=load_camera_rig(cameras_file or None))


#: The simulation bridge's parameters: the one table (config/sim_node.yaml and the README agree with it).
SIM_NODE_PARAMETERS = [
    ParameterSpec("task", "put-block-in-bowl-seen-colors", "task key (see `cliport tasks`)"),
    ParameterSpec("split", "test", "the seeds' split", choices=SPLITS),
    ParameterSpec("seed", -1, "first episode's seed; -1 waits for /sim/reset_episode", minimum=-1, maximum=2**31 - 1),
    ParameterSpec("robot", "ur5", "the simulated arm", choices=("ur5", "panda")),
    ParameterSpec("renderer", "auto", "auto: EGL where it loads, else TinyRenderer", choices=("auto", "egl", "tiny")),
    ParameterSpec("cameras_file", "", "camera rig YAML; empty = config/cameras_sim.yaml (shared with cliport_node)"),
    ParameterSpec(
        "camera_rate",
        5.0,
        "Hz: the scene as rendered after the last reset or step, re-sent with a fresh stamp (0: only then)",
        minimum=0.0,
        maximum=60.0,
    ),
    ParameterSpec("execute_action", "execute_pick_place", "the ExecutePickPlace action served"),
    ParameterSpec("publish_instructions", False, "issue each step's task instruction on /cliport/instruction"),
    ParameterSpec("base_frame", "base_link", "frame of the poses the bridge accepts and publishes"),
]


class SimNode(Node):
    def __init__(
        self,
        node_name: str = "sim_node",
        *,
        context=None,
        parameter_overrides: list[Parameter] | None = None,
        environment_factory: Callable[[str, str, str, str], Any] = make_environment,
        namespace: str | None = None,
    ) -> None:
        super().__init__(node_name, context=context, namespace=namespace, parameter_overrides=parameter_overrides or [])
        declare(self, SIM_NODE_PARAMETERS)
        if self.p("split") not in SPLITS:
            raise ValueError(f"parameter split must be one of {SPLITS}, got {self.p('split')!r}")
        if not (0.0 <= float(self.p("camera_rate")) <= 60.0):
            raise ValueError(
                f"parameter camera_rate must be in [0, 60] Hz (0: only after resets and steps), "
                f"got {self.p('camera_rate')!r}"
            )
        if self.p("robot") not in ("ur5", "panda"):
            raise ValueError(f"parameter robot must be 'ur5' or 'panda', got {self.p('robot')!r}")
        self.sim = SimThread()
        self._environment_factory = environment_factory
        self.env = self.sim.call(
            lambda: environment_factory(self.p("task"), self.p("robot"), self.p("renderer"), self.p("cameras_file"))
        )
        self.split = self.p("split")
        self.seed: int | None = None
        self.executing = threading.Event()
        self._stopping = threading.Event()  # stop_executing(): the motion under way ends at its next check
        # The scene as the cameras last saw it: rendered after each reset and step (the scene does not move
        # between steps) and re-sent with a fresh stamp at camera_rate, as a camera streams a still scene.
        self._frames_lock = threading.Lock()
        self._frames: Any = None
        group = ReentrantCallbackGroup()

        self._camera_pubs = {}
        for cam in self.env.rig if hasattr(self.env, "rig") else ():
            self._add_camera(cam.name)
        self.joint_pub = self.create_publisher(JointState, "joint_states", 10)
        self.status_pub = self.create_publisher(TaskStatus, "sim/task_status", LATCHED)
        self.instruction_pub = self.create_publisher(String, "cliport/instruction", 10)
        self.create_service(
            ResetEpisode, "sim/reset_episode", self._on_reset, callback_group=MutuallyExclusiveCallbackGroup()
        )
        self.create_service(
            OracleAction, "sim/oracle_action", self._on_oracle, callback_group=MutuallyExclusiveCallbackGroup()
        )
        self.action_server = ActionServer(
            self,
            ExecutePickPlace,
            self.p("execute_action"),
            self._execute,
            goal_callback=self._on_goal,
            cancel_callback=lambda _: CancelResponse.ACCEPT,
            callback_group=group,
        )
        if float(self.p("camera_rate")) > 0:
            self.create_timer(
                1.0 / float(self.p("camera_rate")),
                self.publish_cameras,
                callback_group=MutuallyExclusiveCallbackGroup(),
            )
        if int(self.p("seed")) >= 0:
            ok, message, _ = self.reset(self.p("task"), self.split, int(self.p("seed")))
            if not ok:
                raise ValueError(message)
        self.get_logger().info(f"ready: {self.env.task_key}, {self.p('robot')}, cameras at {self.p('camera_rate')} Hz")

    def p(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _add_camera(self, name: str) -> None:
        self._camera_pubs[name] = (
            self.create_publisher(Image, f"{name}/color/image_raw", qos_profile_sensor_data),
            self.create_publisher(Image, f"{name}/aligned_depth_to_color/image_raw", qos_profile_sensor_data),
            self.create_publisher(CameraInfo, f"{name}/color/camera_info", qos_profile_sensor_data),
        )

    # ----- episodes ---------------------------------------------------------------------------------------
    def reset(self, task: str, split: str, seed: int) -> tuple[bool, str, str]:
        """Reset to (task, split, seed); returns (ok, message, instruction)."""
        if split not in SPLITS:
            return False, f"split must be one of {SPLITS}, got {split!r}", ""
        if self.executing.is_set():
            return False, "cannot reset while a pick-and-place is executing", ""

        def do_reset():
            if task and task != self.env.task_key:
                from cliport_ros.sim.tasks import make_task

                make_task(task)  # a bad task key fails here and leaves the bridge as it was
                # The old world is closed before the new one is built: two physics clients with the EGL plugin,
                # one of them then closed, crash the survivor's next render (seen: SIGSEGV in getCameraImage).
                old_task = self.env.task_key
                self.env.close()
                try:
                    self.env = self._environment_factory(
                        task, self.p("robot"), self.p("renderer"), self.p("cameras_file")
                    )
                except Exception:
                    self.env = self._environment_factory(
                        old_task, self.p("robot"), self.p("renderer"), self.p("cameras_file")
                    )
                    raise
            return self.env.reset(seed=seed, split=split)

        try:
            observation = self.sim.call(do_reset)
        except (ValueError, KeyError, RuntimeError) as exc:
            return False, f"reset failed: {exc}", ""
        self.split, self.seed = split, seed
        self.refresh_cameras()
        self.publish_status()
        self._issue_instruction(observation.instruction)
        self.publish_cameras()  # after the instruction: a node decides only on images taken after it arrived
        return True, f"reset {self.env.task_key} {split} seed {seed}", observation.instruction

    def _on_reset(self, request: ResetEpisode.Request, response: ResetEpisode.Response) -> ResetEpisode.Response:
        ok, message, instruction = self.reset(
            request.task or self.env.task_key, request.split or self.split, int(request.seed)
        )
        response.success, response.message, response.instruction = ok, message, instruction
        return response

    def _on_oracle(self, request: OracleAction.Request, response: OracleAction.Response) -> OracleAction.Response:
        if self.seed is None:
            response.success, response.message = False, "no episode yet: reset one (sim/reset_episode)"
            return response
        if self.executing.is_set():
            response.success, response.message = False, "a pick-and-place is executing; ask again after it"
            return response

        def ask():
            if self.env.done:
                return None
            return self.env.oracle()

        try:
            action = self.sim.call(ask)
        except Exception as exc:  # the task's oracle failed: say so, the bridge stays up
            response.success, response.message = False, f"oracle failed: {type(exc).__name__}: {exc}"
            return response
        if action is None:
            response.success, response.message = False, "the episode is done: nothing left to do"
            return response
        response.action = pick_place_to_msg(action, self.get_clock().now().to_msg())
        response.action.header.frame_id = self.p("base_frame")
        response.success, response.message = True, f"oracle action for step {self.status().step + 1}"
        return response

    def status(self) -> TaskStatus:
        def read() -> TaskStatus:
            started = self.seed is not None
            return TaskStatus(
                header=Header(stamp=self.get_clock().now().to_msg(), frame_id=self.p("base_frame")),
                task=self.env.task_key,
                split=self.split,
                seed=self.seed if started else -1,
                instruction=self.env.instruction if started else "",
                step=self.env.step_count if started else 0,
                max_steps=self.env.max_steps,
                score=float(self.env.score) if started else 0.0,
                done=bool(self.env.done) if started else False,
            )

        return self.sim.call(read)

    def publish_status(self) -> None:
        self.status_pub.publish(self.status())

    def _issue_instruction(self, instruction: str) -> None:
        if self.p("publish_instructions"):
            self.instruction_pub.publish(String(data=instruction))

    def stop_executing(self) -> None:
        """End the motion under way at its next cancel check and take no new goals (before close at exit)."""
        self._stopping.set()

    def close(self) -> None:
        """Close the simulator and stop its thread."""
        try:
            self.sim.call(self.env.close)
        finally:
            self.sim.stop()

    # ----- sensors ----------------------------------------------------------------------------------------
    def refresh_cameras(self) -> None:
        """Render the scene as it stands now (after a reset or a step)."""
        frames = self.sim.call(lambda: (self.env.render(), self.env.joint_state()))
        with self._frames_lock:
            self._frames = frames

    def publish_cameras(self, during_execution: bool = False) -> None:
        if self.seed is None or (self.executing.is_set() and not during_execution):
            return  # no scene yet; during motion the images would show the arm mid-air
        with self._frames_lock:  # the stamp is taken with the frames, so it is never older than their scene
            frames = self._frames
            stamp = self.get_clock().now().to_msg()
        if frames is None:
            return
        images, (names, positions) = frames
        for image in images:
            if image.name not in self._camera_pubs:
                self._add_camera(image.name)
            color_pub, depth_pub, info_pub = self._camera_pubs[image.name]
            header = Header(stamp=stamp, frame_id=f"{image.name}_color_optical_frame")
            color_pub.publish(array_to_image(image.rgb, "rgb8", header))
            depth_pub.publish(array_to_image(image.depth.astype("float32", copy=False), "32FC1", header))
            info_pub.publish(camera_info_from_model(image.camera, header))
        self.joint_pub.publish(JointState(header=Header(stamp=stamp), name=list(names), position=list(positions)))

    # ----- the arm ----------------------------------------------------------------------------------------
    def _on_goal(self, goal: ExecutePickPlace.Goal) -> GoalResponse:
        if self._stopping.is_set():
            self.get_logger().warning("ExecutePickPlace goal rejected: the simulator is stopping")
            return GoalResponse.REJECT
        if self.executing.is_set():
            self.get_logger().warning("ExecutePickPlace goal rejected: another is executing")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _execute(self, goal_handle) -> ExecutePickPlace.Result:
        result = ExecutePickPlace.Result(success=False)
        try:
            return self._run_goal(goal_handle, result)
        except Exception as exc:  # never an empty result: its code would carry no reason
            self.executing.clear()
            result.success = False
            result.error_code = ExecutePickPlace.Result.INTERNAL_ERROR
            result.message = f"simulator bridge error: {type(exc).__name__}: {exc}"
            self.get_logger().error(result.message)
            if goal_handle.is_active:
                goal_handle.abort()
            return result

    def _run_goal(self, goal_handle, result: ExecutePickPlace.Result) -> ExecutePickPlace.Result:
        try:
            decision = pick_place_from_msg(goal_handle.request.pick_place)
        except ValueError as exc:
            goal_handle.abort()
            result.error_code, result.message = ExecutePickPlace.Result.INVALID_GOAL, str(exc)
            return result
        if decision.frame_id != self.p("base_frame"):
            goal_handle.abort()
            result.error_code = ExecutePickPlace.Result.INVALID_GOAL
            result.message = f"poses are in '{decision.frame_id}'; this arm takes '{self.p('base_frame')}'"
            return result
        if self.seed is None:
            goal_handle.abort()
            result.error_code, result.message = ExecutePickPlace.Result.INTERNAL_ERROR, "no episode: reset first"
            return result

        def on_stage(name: str) -> None:
            goal_handle.publish_feedback(ExecutePickPlace.Feedback(stage=STAGE_CODES.get(name, 0), stage_name=name))

        self.executing.set()
        try:
            try:
                step = self.sim.call(
                    lambda: self.env.step(
                        decision,
                        on_stage=on_stage,
                        should_cancel=lambda: goal_handle.is_cancel_requested or self._stopping.is_set(),
                    )
                )
            except Exception as exc:  # the bridge stays up; the result says what broke
                goal_handle.abort()
                result.error_code, result.message = ExecutePickPlace.Result.INTERNAL_ERROR, f"simulator error: {exc}"
                return result
            # Fresh images and the next instruction, and only then the status that may say "done": an evaluator
            # that resets on "done" must not find a half-finished step (or get a stale instruction).
            self.refresh_cameras()
            if not step.done and not goal_handle.is_cancel_requested:
                self._issue_instruction(step.observation.instruction)
            self.publish_cameras(during_execution=True)
        finally:
            self.executing.clear()
        self.publish_status()
        if goal_handle.is_cancel_requested:
            goal_handle.canceled()
            result.error_code, result.message = ExecutePickPlace.Result.CANCELED, step.message or "canceled"
            return result
        result.success = bool(step.success)
        result.message = step.message or ("ok" if step.success else "failed")
        if step.success:
            goal_handle.succeed()
            result.error_code = ExecutePickPlace.Result.SUCCESS
        else:
            goal_handle.abort()
            result.error_code = _failure_code(step.message)
        return result


def _failure_code(message: str) -> int:
    """ExecutePickPlace result code for a failed primitive, from its reason (cliport_ros.sim.primitives)."""
    text = (message or "").lower()
    if "is outside the workspace" in text:
        return ExecutePickPlace.Result.OUT_OF_WORKSPACE  # refused before moving
    if text.startswith(("pick pose", "place pose")):
        return ExecutePickPlace.Result.PLANNING_FAILED  # no IK solution: nothing moved
    if text.startswith("pick failed"):
        return ExecutePickPlace.Result.GRASP_FAILED
    if text.startswith("place:"):
        return ExecutePickPlace.Result.RELEASE_FAILED
    return ExecutePickPlace.Result.EXECUTION_FAILED


def main(argv: list[str] | None = None) -> int:
    """``ros2 run cliport_ros sim_node --ros-args -p task:=put-block-in-bowl-seen-colors -p seed:=10001``."""
    return run_node("sim_node", SimNode, argv, close=lambda node: node.close())


if __name__ == "__main__":
    sys.exit(main())
