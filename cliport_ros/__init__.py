"""cliport_ros: CLIPort as a ROS 2 robot control node.

The Python package shares its name with the interfaces that rosidl generates from ``msg/`` and
``action/``. In a colcon install both land in one folder; in the development set-up (``make``) the
generated ``cliport_ros/msg`` and ``cliport_ros/action`` live in the venv's site-packages while this
package is imported from the source tree. ``extend_path`` joins the two so that ``cliport_ros.msg``
imports in either case.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
