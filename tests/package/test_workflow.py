"""The native CI workflow (.github/workflows/platforms.yml) cannot run here: it is checked against
GitHub's workflow schema (check-jsonschema's vendored copy), and its steps against the project's
files they name."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github/workflows/platforms.yml"
CHECK = ROOT / ".venv/bin/check-jsonschema"


def test_the_workflow_is_valid_for_github_actions():
    run = subprocess.run([str(CHECK), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_checker_rejects_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "run-on:"))
    run = subprocess.run([str(CHECK), "--builtin-schema", "vendor.github-workflows", str(broken)],
                         capture_output=True, text=True)
    assert run.returncode != 0 and "run-on" in run.stdout, run.stdout


def test_the_workflow_names_files_the_package_has():
    text = WORKFLOW.read_text()
    gdext = (ROOT / "addons/websocket_server/websocket_server.gdextension").read_text()
    for lib in ("websocket_server.x86_64-pc-windows-gnu.editor.dll",
                "libwebsocket_server.universal-apple-darwin.editor.dylib"):
        assert f"lib: {lib}" in text and f'"bin/{lib}"' in gdext, lib
    assert "tests/package/smoke.gd" in text and (ROOT / "tests/package/smoke.gd").exists()
