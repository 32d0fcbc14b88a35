"""Camera models and the simulated rig file."""

from __future__ import annotations

import numpy as np
import pytest

from cliport_ros.perception import CameraModel, CameraRig, load_camera_rig, look_at_quaternion


def test_sim_rig_matches_the_paper():
    rig = load_camera_rig()
    assert rig.names == ["front", "left", "right"]
    for cam in rig:
        assert (cam.width, cam.height, cam.fx, cam.fy, cam.cx, cam.cy) == (640, 480, 450.0, 450.0, 320.0, 240.0)
    assert rig["front"].position == (1.0, 0.0, 0.75)
    # Every camera looks down at the table: the optical axis hits z=0 inside the workspace's x range.
    for cam in rig:
        forward = cam.rotation[:, 2]
        hit = np.array(cam.position) + forward * (-cam.position[2] / forward[2])
        assert forward[2] < 0 and 0.2 <= hit[0] <= 0.5 and abs(hit[1]) < 0.1


def test_look_at_reproduces_the_front_camera():
    rig = load_camera_rig()
    q = look_at_quaternion((1.0, 0.0, 0.75), (0.25, 0.0, 0.0))
    assert np.allclose(np.abs(q), np.abs(rig["front"].orientation), atol=1e-6)


def test_camera_validation_messages():
    base = load_camera_rig()["front"].to_dict()
    with pytest.raises(ValueError, match="fx must be a positive focal length"):
        CameraModel.from_dict({**base, "fx": -1.0})
    with pytest.raises(ValueError, match="unit norm"):
        CameraModel.from_dict({**base, "orientation": [0, 0, 0, 2]})
    with pytest.raises(ValueError, match="either orientation or look_at"):
        CameraModel.from_dict({**base, "look_at": [0.5, 0, 0]})
    with pytest.raises(ValueError, match=r"missing field\(s\) \['fy'\]"):
        CameraModel.from_dict({k: v for k, v in base.items() if k != "fy"})
    with pytest.raises(ValueError, match="camera names must be unique"):
        CameraRig((CameraModel.from_dict(base), CameraModel.from_dict(base)))


def test_rig_file_errors(tmp_path):
    bad = tmp_path / "rig.yaml"
    bad.write_text("cameras: 3\n")
    with pytest.raises(ValueError, match="rig.yaml: a camera rig file needs a top-level 'cameras:' list"):
        load_camera_rig(bad)
    with pytest.raises(FileNotFoundError, match="camera rig file not found"):
        load_camera_rig(tmp_path / "missing.yaml")
