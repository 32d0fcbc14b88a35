"""The suction pick-and-place primitive: contact-only suction, stages, cancel, unreachable poses, Panda."""

import numpy as np
import pytest

from cliport_ros.sim import STAGES, SimEnvironment
from cliport_ros.sim.robots import tool_orientation
from cliport_ros.types import PickPlace, Pose


@pytest.fixture(scope="module")
def env():
    e = SimEnvironment("put-block-in-bowl-seen-colors")
    yield e
    e.close()


def _blocks_and_bowls(env):
    blocks = [b for b, o in env.scene.objects.items() if o.kind == "block"]
    bowls = [b for b, o in env.scene.objects.items() if o.kind == "bowl"]
    return blocks, bowls


def test_suction_attaches_only_on_contact_and_only_pickable_bodies(env):
    env.reset(0)
    blocks, bowls = _blocks_and_bowls(env)
    pos, _ = env.scene.pose(blocks[0])
    top = pos[2] + 0.02
    # 1 cm above the block: no contact, nothing attached.
    assert env.robot.movep((pos[0], pos[1], top + 0.01), tool_orientation(0.0))[0]
    env.client.stepSimulation()
    assert env.suction.touching() == [] and env.suction.activate() is None and env.suction.held is None
    # Pressed onto the block: attached, at the current relative pose, and carried rigidly.
    env.robot.movep((pos[0], pos[1], top - 0.002), tool_orientation(0.0), until=env.suction.detect_contact)
    assert blocks[0] in env.suction.touching()
    assert env.suction.activate() == blocks[0]
    tip0 = env.robot.tip_pose()[0]
    offset = env.scene.pose(blocks[0])[0] - tip0
    env.robot.movep((pos[0], pos[1], top + 0.1), tool_orientation(0.0))
    tip1 = env.robot.tip_pose()[0]
    assert tip1[2] > tip0[2] + 0.09
    assert np.allclose(env.scene.pose(blocks[0])[0] - tip1, offset, atol=0.003)
    env.suction.release()
    # A bowl is touched but never attached.
    bpos, _ = env.scene.pose(bowls[0])
    env.robot.movep((bpos[0], bpos[1], 0.05), tool_orientation(0.0))
    env.robot.movep((bpos[0], bpos[1], 0.0), tool_orientation(0.0), until=env.suction.detect_contact)
    assert env.suction.touching() and env.suction.activate() is None


def test_stages_in_order_and_block_lands_on_target(env):
    env.reset(2)
    action = env.oracle()
    stages = []
    result = env.step(action, on_stage=stages.append)
    assert result.success and result.message == ""
    assert stages == list(STAGES)
    goal = env.task.goals[0]
    block = goal.objects[0] if len(goal.objects) == 1 else None
    if block is not None:
        pos, _ = env.scene.pose(block)
        nearest = min(np.hypot(pos[0] - t[0][0], pos[1] - t[0][1]) for t in goal.targets)
        assert nearest < 0.01


def test_missing_the_object_is_a_reported_failure(env):
    env.reset(0)
    blocks, bowls = _blocks_and_bowls(env)
    before = {b: env.scene.pose(b)[0] for b in blocks}
    bpos, _ = env.scene.pose(bowls[0])
    empty = PickPlace(Pose((float(bpos[0]), float(bpos[1]), 0.0)), Pose((0.5, 0.0, 0.0)))
    result = env.step(empty)
    assert not result.success and result.message.startswith("pick failed")
    for b in blocks:
        assert np.allclose(env.scene.pose(b)[0], before[b], atol=1e-3)


def test_targets_outside_the_workspace_are_refused_before_any_motion(env):
    env.reset(0)
    action = env.oracle()
    joints = env.joint_state()[1]
    for far, name in (
        (PickPlace(Pose((0.5, -0.65, 0.02)), action.place), "pick at (0.500, -0.650)"),
        (PickPlace(action.pick, Pose((0.5, 0.7, 0.02))), "place at (0.500, 0.700)"),
    ):
        result = env.step(far)
        assert not result.success and result.message.startswith(name), result.message
        assert "is outside the workspace x [0.25, 0.75], y [-0.5, 0.5]: nothing moved" in result.message
        assert np.allclose(env.joint_state()[1], joints, atol=1e-6)
    assert env.suction.held is None


def test_unreachable_targets_fail_with_a_reason_not_an_exception(env):
    from cliport_ros.sim.primitives import pick_place

    env.reset(0)
    action = env.oracle()
    # The primitive itself, below the environment's workspace check: poses no arm can reach.
    result = pick_place(
        env.robot,
        env.suction,
        Pose((1.6, 0.0, 0.02)),
        action.place,
        env.workspace.z_min,
        env.primitive,
        settle=env.scene.settle,
    )
    assert not result.success and result.reason.startswith("pick pose unreachable")
    result = pick_place(
        env.robot,
        env.suction,
        action.pick,
        Pose((0.0, 1.5, 0.02)),
        env.workspace.z_min,
        env.primitive,
        settle=env.scene.settle,
    )
    assert not result.success and result.reason.startswith("place pose unreachable")
    env.suction.release()
    assert env.suction.held is None


def test_poses_the_ik_stalled_short_of_are_reached(env):
    # From the joints after a reset, pybullet's IK alone stalls 5.5 mm short of this pose (tool yaw 3 rad);
    # starting again with the last joint turned reaches it.
    env.reset(303, "val")
    robot = env.robot
    before = robot.joints()
    for yaw in (0.0, 1.0, 2.0, 3.0, -3.0):
        solution, reason = robot.solve_ik((0.398, -0.048, 0.005), tool_orientation(yaw))
        assert solution is not None, reason
        np.testing.assert_allclose(robot.joints(), before)  # solving moves nothing
    # The joints an episode of the shipped policy left the arm in (last joint wound past a turn), from which
    # the IK alone stalled 5.5 mm short of that episode's place.
    wound = [2.71, -2.15, 1.79, -1.21, -1.57, 4.28]
    for j, q in zip(robot.joint_indices, wound):
        env.client.resetJointState(robot.body, j, q)
    solution, reason = robot.solve_ik((0.402, 0.067, 0.005), tool_orientation(-1.4))
    assert solution is not None, reason
    np.testing.assert_allclose(robot.joints(), wound)
    solution, reason = robot.solve_ik((0.74, -0.49, 0.02), tool_orientation(0.0))  # 0.89 m out: past reach
    assert solution is None and reason.startswith("unreachable: IK error")


def test_cancel_between_motion_steps(env):
    env.reset(0)
    action = env.oracle()
    stages = []
    result = env.step(action, on_stage=stages.append, should_cancel=lambda: "move" in stages)
    assert not result.success and result.message == "canceled"
    assert stages[-1] == "move" and env.suction.held is None and not env.done


def test_panda_with_closed_fingers_as_the_cup():
    with SimEnvironment("put-block-in-bowl-seen-colors", robot="panda") as panda:
        panda.reset(2)
        names, values = panda.joint_state()
        assert names[:7] == [f"panda_joint{i}" for i in range(1, 8)] and len(values) == len(names)
        while not panda.done:
            result = panda.step(panda.oracle())
            assert result.success, result.message
        assert panda.score == pytest.approx(100.0)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="unknown robot 'kuka'"):
        SimEnvironment("put-block-in-bowl-seen-colors", robot="kuka")
    with pytest.raises(ValueError, match="unknown renderer"):
        SimEnvironment("put-block-in-bowl-seen-colors", renderer="vulkan")


def test_poses_in_another_frame_are_refused(env):
    env.reset(0)
    action = env.oracle()
    other = PickPlace(action.pick, action.place, frame_id="world")
    result = env.step(other)
    assert not result.success and "poses are in 'world'" in result.message and env.step_count == 1
