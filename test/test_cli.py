"""The `cliport` command's dispatch."""

from __future__ import annotations

import subprocess
import sys

from cliport_ros.cli import SUBCOMMANDS, main


def test_help_lists_every_subcommand(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    for name in ("tasks", "demos", "train", "eval", "bench", "sim"):
        assert name in SUBCOMMANDS and name in out


def test_unknown_command_is_an_error(capsys):
    try:
        main(["frobnicate"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_help_is_fast_and_imports_no_heavy_module():
    code = (
        "import sys; from cliport_ros.cli import main; main(['--help']); "
        "print(sorted(m for m in ('torch', 'pybullet', 'rclpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
