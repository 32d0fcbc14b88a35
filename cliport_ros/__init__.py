"""cliport_ros: CLIPort as a ROS 2 robot control node.

The Python package shares its name with the interfaces that rosidl generates from ``msg/`` and
``action/``. In a colcon install both land in one folder; in the development set-up (``make``) the
generated ``cliport_ros/msg`` and ``cliport_ros/action`` live in the venv's site-packages while this
package is imported from the source tree. ``extend_path`` joins the two so that ``cliport_ros.msg``
imports in either case.
"""

import os
from pkgutil import extend_path

# Threads that wait at a parallel region's end sleep instead of spinning (GNU OpenMP reads this once, when torch
# loads it, so it is set before anything imports torch). Spinning wins ~10 % on an idle machine, but on a robot
# PC where drivers, MoveIt and RViz share the cores, a spinning thread burns the slice its sibling needs: with
# one busy process on 2 cores the `tiny` decision took 2.7x its quiet time spinning, 1.15x sleeping
# (docs/benchmarks.md).
# An OMP_WAIT_POLICY set in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
