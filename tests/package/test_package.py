"""The release package is what users get, so it is what is tested: scripts/package.sh makes the
zip from every platform's libraries (the test command builds them all with scripts/release.sh
--profile cross-test into target/cross-test-bin, or $WSS_PACKAGE_BIN), checking each
(libcheck.py); it is unpacked into a Godot project made on the spot; Godot imports it and runs a
smoke scene (listen, a client connects, echo, stop), and exports it."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/attacks"))
from godot_server import godot_path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import libcheck  # noqa: E402

SMOKE = (Path(__file__).resolve().parent / "smoke.gd").read_text()


@pytest.fixture(scope="module")
def project():
    """The package, built by scripts/package.sh and unpacked into a Godot project made on the spot
    and imported there: (zip path, project dir)."""
    out = Path(tempfile.mkdtemp(prefix="package-"))
    project = Path(tempfile.mkdtemp(prefix="fresh-project-"))
    try:
        bin_dir = os.environ.get("WSS_PACKAGE_BIN", str(ROOT / "target/cross-test-bin"))
        made = subprocess.run([str(ROOT / "scripts/package.sh"), "--bin", bin_dir, "--out", str(out)], check=True,
                              capture_output=True, text=True).stdout.strip().splitlines()[-1]
        (project / "project.godot").write_text('config_version=5\n\n[application]\n\nconfig/name="Package smoke"\n')
        zipfile.ZipFile(made).extractall(project)
        # The README's remedy for Godot's crash at the end of a project's first headless import
        # (godotengine/godot#111048): name the extension in .godot/extension_list.cfg first.
        (project / ".godot").mkdir()
        (project / ".godot/extension_list.cfg").write_text("res://addons/websocket_server/websocket_server.gdextension\n")
        imp = subprocess.run([godot_path(), "--headless", "--path", str(project), "--import"], capture_output=True,
                             text=True, timeout=300)
        log = imp.stdout + imp.stderr
        assert "Error loading extension" not in log and "SCRIPT ERROR" not in log, log
        assert imp.returncode == 0, f"the first import exited with {imp.returncode}:\n{log[-3000:]}"
        yield Path(made), project
    finally:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(project, ignore_errors=True)


def test_the_package_holds_the_addon_and_nothing_else(project):
    zpath, _ = project
    version = re.search(r'^version = "(.+)"$', (ROOT / "rust/gdext/Cargo.toml").read_text(), re.M).group(1)
    assert zpath.name == f"websocket_server-{version}.zip"
    names = sorted(zipfile.ZipFile(zpath).namelist())
    a = "addons/websocket_server/"
    assert all(n.startswith(a) for n in names), names
    rest = {n[len(a):] for n in names}
    libs = {n for n in rest if n.startswith("bin/")}
    assert rest - libs == {"websocket_server.gdextension", "LICENSE", "README.md", "icons/WebSocketServer.svg",
                           "icons/WebSocketServerPeer.svg", "icons/WebSocketServerRequest.svg"}, "nothing else"
    # Every platform, each in both variants, and exactly the libraries the .gdextension names.
    gdext = zipfile.ZipFile(zpath).read(a + "websocket_server.gdextension").decode()
    assert libs == set(re.findall(r'^[a-z0-9_.]+ = "(bin/[^"]+)"$', gdext, re.M)), libs
    expected = {f"bin/{p}websocket_server.{t}{v}.{e}" for p, t, e in [
        ("lib", "x86_64-unknown-linux-gnu", "so"), ("lib", "aarch64-unknown-linux-gnu", "so"),
        ("", "x86_64-pc-windows-gnu", "dll"), ("lib", "universal-apple-darwin", "dylib")] for v in ("", ".editor")}
    assert libs == expected, sorted(libs ^ expected)


def test_every_library_in_the_package_is_what_its_platform_needs(project):
    """Format, architecture, entry point, imports (system libraries only), glibc floor, macOS
    deployment targets, docs only in the editor's variant: libcheck.py on the files in the zip."""
    zpath, _ = project
    out = Path(tempfile.mkdtemp(prefix="libs-"))
    try:
        with zipfile.ZipFile(zpath) as z:
            libs = [n for n in z.namelist() if "/bin/" in n]
            z.extractall(out, libs)
        env = subprocess.run([str(ROOT / "scripts/toolchains.sh")], check=True, capture_output=True,
                             text=True).stdout.strip()
        os.environ.setdefault("WSS_TOOLCHAINS", str(Path(env).parent))
        facts = [libcheck.check(out / n) for n in libs]
    finally:
        shutil.rmtree(out, ignore_errors=True)
    assert len(facts) == 8
    print("\n".join(str(f) for f in facts))


def test_a_fresh_project_imports_it_and_a_smoke_scene_works(project):
    _, project = project
    for icon in ("WebSocketServer", "WebSocketServerPeer", "WebSocketServerRequest"):
        assert (project / f"addons/websocket_server/icons/{icon}.svg.import").exists(), f"{icon} icon imported"
    (project / "smoke.gd").write_text(SMOKE)
    run = subprocess.run([godot_path(), "--headless", "--path", str(project), "-s", "res://smoke.gd"],
                         capture_output=True, text=True, timeout=120)
    log = run.stdout + run.stderr
    assert "SMOKE OK" in log and run.returncode == 0, log
    for bad in ("SCRIPT ERROR", "ERROR:", "panicked", "leaked"):
        assert bad not in log, log


def test_every_class_member_has_a_description_in_the_editor_help(project):
    """The Godot editor itself, under Xvfb, opens the help page (F1) of each class of the package
    (a test plugin, tests/package/help_check/); the text it renders must describe the class and
    must not say, for any member, that there is no description. A screenshot of WebSocketServer's
    page is kept in target/screenshots/editor-help.png."""
    _, project = project
    shutil.copytree(ROOT / "tests/package/help_check", project / "addons/help_check", dirs_exist_ok=True)
    settings = (project / "project.godot").read_text()
    (project / "project.godot").write_text(
        settings + '\n[editor_plugins]\n\nenabled=PackedStringArray("res://addons/help_check/plugin.cfg")\n')
    out = Path(tempfile.mkdtemp(prefix="help-check-"))
    env = dict(os.environ, HELP_CHECK_OUT=str(out))
    try:
        xvfb = subprocess.run([str(ROOT / "scripts/xvfb.sh")], check=True, capture_output=True,
                              text=True).stdout.strip()
        run = subprocess.run([xvfb, "-a", "-s", "-screen 0 1600x1000x24", godot_path(), "--editor",
                              "--rendering-driver", "opengl3", "--path", str(project)],
                             capture_output=True, text=True, timeout=240, env=env)
        log = run.stdout + run.stderr
        assert (out / "help.json").exists(), log[-5000:]
        pages = json.loads((out / "help.json").read_text())
        shots = ROOT / "target/screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "editor-help.png", shots / "editor-help.png")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    must_show = {
        "WebSocketServer": ["listen", "poll", "accept_upgrade", "reject_upgrade", "get_peer_request",
                            "client_connected", "upgrade_requested", "heartbeat_interval", "trusted_proxies",
                            "max_connections", "authorize_upgrades", "allowed_origins", "proxy_protocol",
                            "queue_messages", "take_messages", "send_messages", "broadcast"],
        "WebSocketServerPeer": ["send_text", "get_request", "get_round_trip_time", "WRITE_MODE_TEXT", "STATE_OPEN",
                                "write_mode"],
        "WebSocketServerRequest": ["get_headers", "get_header", "get_tls_server_name", "get_client_address"],
        "WebSocketServerMessages": ["ids", "packets", "text", "size", "is_empty"],
    }
    for cls, names in must_show.items():
        text = pages.get(cls, "")
        assert text, f"no help page rendered for {cls}"
        lines = [l for l in text.splitlines() if l.strip()]
        undescribed = [f"{lines[i - 1].strip()}: {l.strip()}" for i, l in enumerate(lines)
                       if "There is currently no description" in l]
        assert not undescribed, f"{cls}: members without a description:\n" + "\n".join(undescribed)
        for name in names:
            assert name in text, f"{cls} help lacks {name}"
