#!/usr/bin/env bash
# Build this repository as a ROS 2 package with colcon, the development venv as the ROS underlay, in a
# scratch workspace under build/colcon_ws. What a user with a real ROS 2 Jazzy install does with
# `colcon build` in their workspace (there the underlay is /opt/ros/jazzy).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${VIRTUAL_ENV:-$repo/.venv}
ws=${COLCON_WS:-$repo/build/colcon_ws}
rm -rf "$ws"
mkdir -p "$ws/src"
ln -s "$repo" "$ws/src/cliport_ros"
export PATH="$venv/bin:$PATH" AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv"
cd "$ws"
colcon --log-base "$ws/log" build --base-paths src --build-base "$ws/build" --install-base "$ws/install" \
  --event-handlers console_direct- --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$venv/bin/python" \
  > "$ws/colcon.log" 2>&1 || { tail -60 "$ws/colcon.log"; exit 1; }
echo "colcon build: ok ($ws/install)"
