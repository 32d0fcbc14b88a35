"""Simulated cameras: matrices agree with the pinhole model, depth is metric, fused maps land in place."""

import math

import numpy as np
import pytest

from cliport_ros.geometry import Workspace
from cliport_ros.perception import fuse_views, load_camera_rig
from cliport_ros.sim.rendering import linearise_depth, load_egl, projection_matrix, render_camera, view_matrix

WS = Workspace()


def _world(renderer: str):
    import pybullet
    from pybullet_utils import bullet_client

    from cliport_ros.sim.scene import Scene

    client = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
    use_egl = False
    if renderer == "egl":
        use_egl = load_egl(client) is not None
        if not use_egl:
            client.disconnect()
            pytest.skip("the EGL renderer plugin does not load here")
    scene = Scene(client, WS)
    return client, scene, use_egl


def test_matrices_project_points_like_the_pinhole_model():
    cam = load_camera_rig()["front"]
    view = np.array(view_matrix(cam)).reshape(4, 4).T
    proj = np.array(projection_matrix(cam)).reshape(4, 4).T
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = np.array([rng.uniform(0.3, 0.7), rng.uniform(-0.4, 0.4), rng.uniform(0.0, 0.2), 1.0])
        clip = proj @ view @ p
        ndc = clip[:3] / clip[3]
        # GL pixel centres: (ndc + 1) / 2 * size - 0.5, with image rows counted from the top.
        u = (ndc[0] + 1) / 2 * cam.width - 0.5
        v = (1 - ndc[1]) / 2 * cam.height - 0.5
        pc = cam.rotation.T @ (p[:3] - np.asarray(cam.position))
        assert u == pytest.approx(cam.fx * pc[0] / pc[2] + cam.cx, abs=1e-6)
        assert v == pytest.approx(cam.fy * pc[1] / pc[2] + cam.cy, abs=1e-6)
        zbuf = (ndc[2] + 1) / 2
        assert float(linearise_depth(np.array([[zbuf]]), cam)[0, 0]) == pytest.approx(pc[2], rel=1e-5)


@pytest.mark.parametrize("renderer", ["tiny", "egl"])
def test_rendered_block_lands_in_the_right_cells_at_the_right_height(renderer):
    client, scene, use_egl = _world(renderer)
    try:
        xy, size = (0.55, 0.12), 0.04
        scene.add_block("red", xy, yaw=0.0, size=size)
        images = [render_camera(client, cam, use_egl) for cam in load_camera_rig()]
        view = fuse_views([(im.rgb, im.depth, im.camera) for im in images], WS)
        top = view.height > size / 2
        rows, cols = np.nonzero(top)
        centre = WS.pixel_to_xyz((int(round(rows.mean())), int(round(cols.mean()))))
        assert math.hypot(centre[0] - xy[0], centre[1] - xy[1]) < 1.5 * WS.pixel_size
        # The block's footprint, give or take a pixel at the edges.
        assert abs(top.sum() - (size / WS.pixel_size) ** 2) < 4 * size / WS.pixel_size
        inner = WS.xyz_to_pixel((xy[0], xy[1], 0.0))
        assert view.height[inner] == pytest.approx(size, abs=0.002)
        r, g, b = view.color[inner].astype(int)
        assert r > g + 60 and r > b + 60  # red
        table = WS.xyz_to_pixel((0.4, -0.3, 0.0))
        assert view.height[table] == pytest.approx(0.0, abs=0.002)
        # Empty sky reads as infinite depth, which fusion ignores.
        assert any(np.isinf(im.depth).any() for im in images)
    finally:
        client.disconnect()
