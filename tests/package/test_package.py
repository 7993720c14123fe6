"""The release package is what users get, so it is what is tested: scripts/package.sh builds the
zip, which is unpacked into a Godot project made on the spot; Godot imports it and runs a smoke
scene (listen, a client connects, echo, stop)."""

import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/attacks"))
from godot_server import godot_path  # noqa: E402

SMOKE = """extends SceneTree
# Listen, connect a client, echo one message, stop.
var server := WebSocketServer.new()
var client := WebSocketPeer.new()
var sent := false
var frames := 0

func _initialize() -> void:
    server.bind_ip = "127.0.0.1"
    server.data_received.connect(func(id: int) -> void:
        var peer := server.get_peer(id)
        peer.send_text(peer.get_packet().get_string_from_utf8()))
    if server.listen(0) != OK:
        print("SMOKE FAIL listen")
        quit(1)
        return
    client.connect_to_url("ws://127.0.0.1:%d/" % server.get_local_port())

func _process(_delta: float) -> bool:
    server.poll()
    client.poll()
    frames += 1
    if client.get_ready_state() == WebSocketPeer.STATE_OPEN and not sent:
        client.send_text("héllo from the package")
        sent = true
    if client.get_available_packet_count() > 0:
        var text := client.get_packet().get_string_from_utf8()
        print("SMOKE ECHO " + text)
        client.close()
        server.stop()
        print("SMOKE OK" if text == "héllo from the package" and not server.is_listening() else "SMOKE FAIL echo")
        quit(0)
    elif frames > 2000:
        print("SMOKE FAIL timeout")
        quit(1)
    return false
"""


def test_the_package_installs_into_a_fresh_project_and_works():
    out = Path(tempfile.mkdtemp(prefix="package-"))
    project = Path(tempfile.mkdtemp(prefix="fresh-project-"))
    try:
        check(out, project)
    finally:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(project, ignore_errors=True)


def check(out, project):
    version = re.search(r'^version = "(.+)"$', (ROOT / "rust/gdext/Cargo.toml").read_text(), re.M).group(1)
    made = subprocess.run([str(ROOT / "scripts/package.sh"), "--out", str(out)], check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1]
    zpath = Path(made)
    assert zpath.name == f"websocket_server-{version}.zip"
    names = sorted(zipfile.ZipFile(zpath).namelist())
    a = "addons/websocket_server/"
    assert all(n.startswith(a) for n in names), names
    rest = {n[len(a):] for n in names}
    libs = {n for n in rest if n.startswith("bin/")}
    assert "bin/libwebsocket_server.x86_64-unknown-linux-gnu.so" in libs, names
    assert rest - libs == {"websocket_server.gdextension", "LICENSE", "README.md", "icons/WebSocketServer.svg",
                           "icons/WebSocketServerPeer.svg", "icons/WebSocketServerRequest.svg"}, "nothing else"
    # Every library in the package is one the .gdextension names.
    gdext = zipfile.ZipFile(zpath).read(a + "websocket_server.gdextension").decode()
    assert all(f'"{lib}"' in gdext for lib in libs)

    (project / "project.godot").write_text('config_version=5\n\n[application]\n\nconfig/name="Package smoke"\n')
    zipfile.ZipFile(zpath).extractall(project)
    (project / "smoke.gd").write_text(SMOKE)
    godot = godot_path()
    imp = subprocess.run([godot, "--headless", "--path", str(project), "--import"], capture_output=True, text=True,
                         timeout=300)
    log = imp.stdout + imp.stderr
    assert "Error loading extension" not in log and "SCRIPT ERROR" not in log, log
    for icon in ("WebSocketServer", "WebSocketServerPeer", "WebSocketServerRequest"):
        assert (project / f"addons/websocket_server/icons/{icon}.svg.import").exists(), f"{icon} icon imported"
    run = subprocess.run([godot, "--headless", "--path", str(project), "-s", "res://smoke.gd"], capture_output=True,
                         text=True, timeout=120)
    log = run.stdout + run.stderr
    assert "SMOKE OK" in log and run.returncode == 0, log
    for bad in ("SCRIPT ERROR", "ERROR:", "panicked", "leaked"):
        assert bad not in log, log
