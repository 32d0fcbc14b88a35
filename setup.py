"""pip install . : the ROS-free core (simulator, model, training) and the ``cliport`` command.

On a machine with ROS 2, build with colcon instead (package.xml / CMakeLists.txt): that also generates
the message and action types and installs the nodes for ``ros2 run``.
"""

import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithData(build_py):
    """Copy config/ and checkpoints/ into the package (cliport_ros/_data) for non-ROS installs."""

    def run(self):
        super().run()
        for folder in ("config", "checkpoints"):
            src = HERE / folder
            if src.is_dir():
                dst = Path(self.build_lib) / "cliport_ros" / "_data" / folder
                shutil.copytree(src, dst, dirs_exist_ok=True)


setup(
    name="cliport_ros",
    version="0.1.0",
    description="CLIPort language-conditioned pick-and-place as a ROS 2 robot control node",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["cliport_ros", "cliport_ros.*"]),
    install_requires=[
        "numpy>=1.26",
        "torch>=2.4",
        "torchvision",
        "open_clip_torch>=2.24",
        "opencv-python-headless>=4.8",
        "pybullet>=3.2.6",
        "safetensors>=0.4",
        "tqdm",
        "tensorboard",
        "pyyaml",
        "aiohttp>=3.9",
        "mcap>=1.1",
        "mcap-ros2-support>=0.5",
        "zstandard",
    ],
    package_data={"cliport_ros.console": ["static/*"]},
    cmdclass={"build_py": BuildPyWithData},
    entry_points={
        "console_scripts": [
            "cliport = cliport_ros.cli:main",
            "cliport_node = cliport_ros.ros.cliport_node:main",
            "sim_node = cliport_ros.ros.sim_node:main",
            "moveit_executor = cliport_ros.ros.moveit_executor:main",
            "fake_franka_hand = cliport_ros.ros.fake_franka_hand:main",
            "fake_suction = cliport_ros.ros.fake_suction:main",
            "console_node = cliport_ros.ros.console_node:main",
        ]
    },
)
