"""Top-down fusion: projection round trips, the max-height rule, several views, bad input."""

import math

import numpy as np
import pytest

from cliport_ros.geometry import Workspace
from cliport_ros.perception import CameraModel, TopDownView, depth_to_points, fuse_views, project_points
from cliport_ros.perception.camera import look_at_quaternion

WS = Workspace()


def camera(name, position, target=(0.5, 0.0, 0.0), width=640, height=480, f=450.0):
    return CameraModel(
        name,
        width,
        height,
        f,
        f,
        width / 2,
        height / 2,
        tuple(position),
        look_at_quaternion(position, target, up=(1.0, 0.0, 0.0) if position[0] == 0.5 else (0, 0, 1)),
    )


def raycast(cam, box_min, box_max, plane_z=0.0):
    """Analytic depth (along the optical axis) of a scene: the plane z=plane_z and one axis-aligned box."""
    u, v = np.meshgrid(np.arange(cam.width), np.arange(cam.height))
    rays = np.stack([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, np.ones_like(u, dtype=float)], -1)
    d = rays @ cam.rotation.T  # base-frame direction per unit of depth
    o = np.asarray(cam.position)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_plane = (plane_z - o[2]) / d[..., 2]
        t_plane[t_plane <= 0] = np.inf
        lo = (np.asarray(box_min) - o) / d
        hi = (np.asarray(box_max) - o) / d
    t_near = np.nanmax(np.minimum(lo, hi), axis=-1)
    t_far = np.nanmin(np.maximum(lo, hi), axis=-1)
    hit_box = (t_near <= t_far) & (t_near > 0)
    t = np.where(hit_box, np.minimum(t_near, t_plane), t_plane)
    return t.astype(np.float32), hit_box


def test_project_points_round_trip_to_cells_and_back():
    rng = np.random.default_rng(0)
    cells = rng.choice(WS.rows * WS.cols, 500, replace=False)
    u, v = cells // WS.cols, cells % WS.cols
    # Random points anywhere inside their cells.
    x = WS.x_min + (v + rng.uniform(0, 1, 500)) * WS.pixel_size
    y = WS.y_min + (u + rng.uniform(0, 1, 500)) * WS.pixel_size
    z = rng.uniform(0.0, 0.25, 500)
    pts = np.stack([x, y, z], 1)
    colors = rng.integers(0, 256, (500, 3), dtype=np.uint8)
    view = project_points(pts, colors, WS)
    for k in range(500):
        pix = WS.xyz_to_pixel(pts[k])
        assert pix == (u[k], v[k])
        assert view.height[pix] == pytest.approx(z[k], abs=1e-6)
        assert tuple(view.color[pix]) == tuple(colors[k])
        back = np.asarray(view.xyz(pix))
        assert np.all(np.abs(back[:2] - pts[k, :2]) <= WS.pixel_size / 2 + 1e-12)
        assert back[2] == pytest.approx(z[k], abs=1e-6)
    assert np.count_nonzero(view.height) == 500


def test_highest_point_wins_its_cell_with_its_color():
    pts = np.array([[0.5, 0.0, 0.01], [0.5001, 0.0001, 0.05], [0.5002, 0.0002, 0.03]])
    colors = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
    view = project_points(pts, colors, WS)
    pix = WS.xyz_to_pixel(pts[0])
    assert view.height[pix] == pytest.approx(0.05)
    assert tuple(view.color[pix]) == (0, 255, 0)


def test_depth_to_points_recovers_known_points():
    cam = camera("down", (0.5, 0.0, 0.8))
    rng = np.random.default_rng(1)
    u = rng.integers(0, cam.width, 50)
    v = rng.integers(0, cam.height, 50)
    depth = np.full((cam.height, cam.width), np.nan, dtype=np.float32)
    z_cam = rng.uniform(0.3, 0.8, 50).astype(np.float32)
    depth[v, u] = z_cam
    pts = depth_to_points(depth, cam)
    assert pts.shape == (len(set(zip(v, u))), 3)
    # Re-project each point through the pinhole model: same pixel, same depth.
    cam_pts = (pts - np.asarray(cam.position)) @ cam.rotation
    uu = cam_pts[:, 0] / cam_pts[:, 2] * cam.fx + cam.cx
    vv = cam_pts[:, 1] / cam_pts[:, 2] * cam.fy + cam.cy
    order = np.lexsort((u, v))
    pairs = sorted(set(zip(v.tolist(), u.tolist())))
    assert np.allclose(np.stack([vv, uu], 1), np.array(pairs), atol=1e-3)
    assert np.allclose(cam_pts[:, 2], [depth[p] for p in pairs], atol=1e-5)
    assert order.size == 50


def test_fuse_one_view_of_a_box_on_the_table():
    cam = camera("down", (0.5, 0.0, 0.9))
    box_min, box_max = (0.45, -0.05, 0.0), (0.55, 0.05, 0.06)
    depth, _ = raycast(cam, box_min, box_max)
    rgb = np.full((cam.height, cam.width, 3), 100, dtype=np.uint8)
    view = fuse_views([(rgb, depth, cam)], WS)
    assert isinstance(view, TopDownView)
    assert view.height.dtype == np.float32 and view.color.dtype == np.uint8
    centre = WS.xyz_to_pixel((0.5, 0.0, 0.0))
    assert view.height[centre] == pytest.approx(0.06, abs=1e-4)
    # Table next to the box: seen, height 0, color of the table.
    table = WS.xyz_to_pixel((0.5, 0.15, 0.0))
    assert view.height[table] == pytest.approx(0.0, abs=1e-4)
    assert tuple(view.color[table]) == (100, 100, 100)


def test_fusion_of_several_views_max_height_and_mean_color():
    cams = [camera("a", (1.0, 0.0, 0.75)), camera("b", (0.0, 0.5, 0.75)), camera("c", (0.0, -0.5, 0.75))]
    box_min, box_max = (0.45, -0.05, 0.0), (0.55, 0.05, 0.08)
    views = []
    for k, cam in enumerate(cams):
        depth, _ = raycast(cam, box_min, box_max)
        rgb = np.full((cam.height, cam.width, 3), 60 * (k + 1), dtype=np.uint8)
        views.append((rgb, depth, cam))
    single = [fuse_views([view], WS) for view in views]
    fused = fuse_views(views, WS)
    top = WS.xyz_to_pixel((0.5, 0.0, 0.0))
    assert fused.height[top] == pytest.approx(0.08, abs=2e-3)
    assert np.allclose(fused.height, np.max([s.height for s in single], axis=0))
    seen_by = [s.color[top].astype(int) for s in single if s.color[top].any()]
    assert len(seen_by) >= 2
    assert np.allclose(fused.color[top], np.mean(seen_by, axis=0), atol=1)
    # The fused map sees more of the table than any single view.
    assert np.count_nonzero(fused.color.any(-1)) > max(np.count_nonzero(s.color.any(-1)) for s in single)


def test_invalid_depth_is_ignored_not_fused():
    cam = camera("down", (0.5, 0.0, 0.9))
    depth, _ = raycast(cam, (0.45, -0.05, 0.0), (0.55, 0.05, 0.06))
    rgb = np.full((cam.height, cam.width, 3), 200, dtype=np.uint8)
    clean = fuse_views([(rgb, depth, cam)], WS)
    noisy = depth.copy()
    noisy[::7, ::5] = np.nan
    noisy[3::7, ::5] = np.inf
    noisy[5::7, ::5] = 0.0
    noisy[6::7, ::5] = -1.0
    dirty = fuse_views([(rgb, noisy, cam)], WS)
    assert np.all(np.isfinite(dirty.height)) and dirty.height.max() <= clean.height.max() + 1e-6
    seen = dirty.color.any(-1)
    assert np.allclose(dirty.height[seen], clean.height[seen], atol=1e-6)


def test_float64_depth_is_accepted_and_matches_float32():
    cam = camera("down", (0.5, 0.0, 0.9))
    depth, _ = raycast(cam, (0.45, -0.05, 0.0), (0.55, 0.05, 0.06))
    rgb = np.zeros((cam.height, cam.width, 3), dtype=np.uint8)
    a = fuse_views([(rgb, depth, cam)], WS)
    b = fuse_views([(rgb, depth.astype(np.float64), cam)], WS)
    assert np.array_equal(a.height, b.height)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda rgb, d: (rgb.astype(np.float32), d), "rgb must be uint8"),
        (lambda rgb, d: (rgb, d.astype(np.uint16)), "depth must be float32"),
        (lambda rgb, d: (rgb[:-1], d), "differ in size"),
        (lambda rgb, d: (rgb[:-1], d[:-1]), "camera model is"),
        (lambda rgb, d: (rgb, np.full_like(d, np.nan)), "no view has any valid depth"),
        (lambda rgb, d: (rgb[..., :2], d), "rgb must be uint8 (H, W, 3)"),
    ],
)
def test_malformed_views_raise_clear_errors(mutate, message):
    cam = camera("down", (0.5, 0.0, 0.9))
    rgb = np.zeros((cam.height, cam.width, 3), dtype=np.uint8)
    depth = np.ones((cam.height, cam.width), dtype=np.float32)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fuse_views([(*mutate(rgb, depth), cam)], WS)


def test_no_views_is_an_error():
    with pytest.raises(ValueError, match="at least one"):
        fuse_views([], WS)


def test_points_outside_the_workspace_are_dropped():
    pts = np.array([[0.2, 0.0, 0.05], [0.5, 0.6, 0.05], [0.5, 0.0, 0.5], [0.5, 0.0, -0.5]])
    view = project_points(pts, np.full((4, 3), 255, np.uint8), WS)
    assert not view.height.any() and not view.color.any()
    assert math.isclose(float(view.height.sum()), 0.0)
