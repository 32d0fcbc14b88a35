"""Camera images from PyBullet for a ``CameraModel``: view/projection matrices, z-buffer -> metres.

The optical frame is x right, y down, z forward; OpenGL's camera looks down -z with y up, so the view
matrix is inverse(T_base_optical * diag(1, -1, -1)). The projection maps pixel (u, v)'s centre to
((u - cx) / fx, (v - cy) / fy) on the z = 1 plane, the convention ``fuse_views`` back-projects with.
"""

from __future__ import annotations

import pkgutil
from dataclasses import dataclass

import numpy as np

from cliport_ros.perception.camera import CameraModel

RENDERERS = ("auto", "egl", "tiny")
LIGHT_DIRECTION = (0.0, 0.0, 1.0)


@dataclass(frozen=True)
class CameraImage:
    """One rendered view: RGB uint8 (H, W, 3), depth float32 metres (H, W), and the camera that took it."""

    name: str
    rgb: np.ndarray
    depth: np.ndarray
    camera: CameraModel


def view_matrix(camera: CameraModel) -> tuple[float, ...]:
    """OpenGL view matrix (world -> GL camera), 16 floats column-major, as PyBullet takes it."""
    optical_to_gl = np.diag([1.0, -1.0, -1.0, 1.0])
    world_from_gl = camera.transform @ optical_to_gl
    gl_from_world = np.linalg.inv(world_from_gl)
    return tuple(float(c) for c in gl_from_world.T.reshape(-1))


def projection_matrix(camera: CameraModel) -> tuple[float, ...]:
    """OpenGL projection matrix from the pinhole intrinsics, 16 floats column-major."""
    w, h, n, f = camera.width, camera.height, camera.z_near, camera.z_far
    m = np.zeros((4, 4))
    m[0, 0] = 2.0 * camera.fx / w
    m[0, 2] = 1.0 - 2.0 * (camera.cx + 0.5) / w
    m[1, 1] = 2.0 * camera.fy / h
    m[1, 2] = 2.0 * (camera.cy + 0.5) / h - 1.0
    m[2, 2] = -(f + n) / (f - n)
    m[2, 3] = -2.0 * f * n / (f - n)
    m[3, 2] = -1.0
    return tuple(float(c) for c in m.T.reshape(-1))


def linearise_depth(zbuffer: np.ndarray, camera: CameraModel) -> np.ndarray:
    """OpenGL depth buffer in [0, 1] -> metres along the optical axis (float32); far plane -> inf."""
    n, f = camera.z_near, camera.z_far
    zb = np.asarray(zbuffer, dtype=np.float64)
    depth = (f * n) / (f - (f - n) * zb)
    depth[zb >= 1.0] = np.inf  # nothing there: background
    return depth.astype(np.float32)


def _load_llvm_users_first() -> None:
    """Import triton, where installed, before the EGL plugin loads.

    On a machine without a GPU the EGL plugin renders with Mesa's llvmpipe, which loads its own LLVM; triton
    (imported later by torchvision through torch._dynamo) carries another, and loading triton second crashes
    the process (seen: `cliport sim` segfaulted on `import open_clip` after the simulator started). Loaded
    first, both work.
    """
    try:
        import triton  # noqa: F401
    except Exception:  # not installed (a CPU-only torch) or unusable: nothing to protect
        pass


def load_egl(client) -> int | None:
    """Load the EGL renderer plugin into a physics client by file path; plugin id or None if it fails."""
    _load_llvm_users_first()
    try:
        loader = pkgutil.get_loader("eglRenderer")
        if loader is None:
            return None
        plugin = client.loadPlugin(loader.get_filename(), "_eglRendererPlugin")
    except Exception:  # no EGL library / display: fall back to TinyRenderer
        return None
    if plugin is None or plugin < 0:
        return None
    # The OpenGL path ignores getCameraImage(shadow=0); shadows are a visualiser setting there.
    client.configureDebugVisualizer(client.COV_ENABLE_SHADOWS, 0)
    return plugin


def render_camera(client, camera: CameraModel, use_egl: bool) -> CameraImage:
    """Render one camera: RGB, linear depth in metres, no shadows, no segmentation."""
    import pybullet

    _, _, rgba, zbuf, _ = client.getCameraImage(
        width=camera.width,
        height=camera.height,
        viewMatrix=view_matrix(camera),
        projectionMatrix=projection_matrix(camera),
        shadow=0,
        # PyBullet 3.2.7's EGL plugin draws shadows whatever shadow/COV_ENABLE_SHADOWS say; light from
        # straight above keeps them under the objects, where the top-down view does not see them.
        lightDirection=LIGHT_DIRECTION,
        flags=pybullet.ER_NO_SEGMENTATION_MASK,
        renderer=pybullet.ER_BULLET_HARDWARE_OPENGL if use_egl else pybullet.ER_TINY_RENDERER,
    )
    rgb = np.asarray(rgba, dtype=np.uint8).reshape(camera.height, camera.width, 4)[:, :, :3].copy()
    depth = linearise_depth(np.asarray(zbuf, dtype=np.float32).reshape(camera.height, camera.width), camera)
    return CameraImage(camera.name, rgb, depth, camera)
