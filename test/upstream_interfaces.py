"""Upstream interface packages that cliport_ros talks to but that no wheel provides here (ur_msgs, franka_msgs,
controller_manager_msgs, tf2_msgs), built
from test/interfaces/<package> with the normal rosidl CMake route against the venv, once per content."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def build(package: str) -> dict[str, str]:
    """Build (or reuse) test/interfaces/<package>; the environment a subprocess needs to import it."""
    source = HERE / "interfaces" / package
    inputs = [p for p in sorted(source.rglob("*")) if p.is_file()] + sorted((REPO / "cmake").glob("*.cmake"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in inputs)).hexdigest()
    root = REPO / "build" / "test_interfaces" / f"{package}-{digest[:12]}"
    install = root / "install"
    venv = Path(sys.prefix)
    if not (root / "done").is_file():
        env = dict(
            os.environ,
            PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
            AMENT_PREFIX_PATH=str(venv),
            VIRTUAL_ENV=str(venv),
        )
        for step in (
            [
                "cmake",
                "-S",
                str(source),
                "-B",
                str(root / "build"),
                "-DBUILD_TESTING=OFF",
                f"-DCMAKE_PREFIX_PATH={venv}",
                f"-DPython3_EXECUTABLE={sys.executable}",
                f"-DCMAKE_INSTALL_PREFIX={install}",
            ],
            ["cmake", "--build", str(root / "build"), "-j2"],
            ["cmake", "--install", str(root / "build")],
        ):
            done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise RuntimeError(
                    f"building {package}: {' '.join(step[:2])} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
                )
        (root / "done").write_text("ok\n")
    site = next(install.glob("lib/python3*/site-packages"))
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        LD_LIBRARY_PATH=os.pathsep.join([str(install / "lib"), os.environ.get("LD_LIBRARY_PATH", "")]),
        AMENT_PREFIX_PATH=os.pathsep.join([str(install), os.environ.get("AMENT_PREFIX_PATH", str(venv))]),
    )


def build_all(*packages: str) -> dict[str, str]:
    """The environment a subprocess needs to import all of ``packages``."""
    env = dict(os.environ)
    for package in packages:
        built = build(package)
        for key in ("PYTHONPATH", "LD_LIBRARY_PATH", "AMENT_PREFIX_PATH"):
            first = built[key].split(os.pathsep)[0]
            env[key] = os.pathsep.join([first, env.get(key, "")]) if env.get(key) else first
    return env
