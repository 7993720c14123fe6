"""What a packaged library must be, for each platform, read with LLVM's binary tools (from
scripts/toolchains.sh; they read ELF, PE and Mach-O alike):

- its file format and architecture are the ones its name (a Rust target triple) says;
- it exports Godot's entry point, `gdext_rust_init`, and on Linux and Windows nothing else (but on
  Linux gdext's hot-reload workaround, `__cxa_thread_atexit_impl`: godot-ffi's
  linux_reload_workaround.rs replaces glibc's on purpose);
- it needs only what every machine of that OS has: Linux glibc's own libraries (and a glibc no newer
  than GLIBC_FLOOR), Windows system DLLs (no MinGW runtime DLL), macOS system libraries;
- macOS: both architectures in one file, each with the deployment target README states, an
  install name that is not a build machine's path;
- the editor's library (`.editor.`) carries the class reference, the export templates' does not,
  so gdext's "register-docs in an exported build" warning is not even in it.

Usage: python3 tests/package/libcheck.py FILE...   (prints one line per file; exits 1 on a failure)
The test command runs it on every library of the package (tests/package/test_package.py), and
scripts/release.sh on the release libraries."""

import os
import re
import subprocess
import sys
from pathlib import Path

# The newest glibc symbol version a Linux library may need (Ubuntu 22.04, Debian 12 and newer).
GLIBC_FLOOR = (2, 34)
LINUX_LIBS = {"libc.so.6", "libm.so.6", "libgcc_s.so.1", "libdl.so.2", "libpthread.so.0", "librt.so.1",
              "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}
# What Rust's standard library and our dependencies import on Windows: all part of Windows itself.
WINDOWS_DLLS = {"kernel32.dll", "ntdll.dll", "ws2_32.dll", "advapi32.dll", "bcrypt.dll", "bcryptprimitives.dll",
                "msvcrt.dll", "userenv.dll", "api-ms-win-core-synch-l1-2-0.dll", "shell32.dll", "ole32.dll"}
MACOS_MIN = {"arm64": "11.0", "x86_64": "10.13"}
ELF_ARCH = {"x86_64-unknown-linux-gnu": ("elf64-x86-64", "x86_64"),
            "aarch64-unknown-linux-gnu": ("elf64-littleaarch64", "aarch64")}
# Compiled in only with gdext's `register-docs` feature.
DOCS_WARNING = b"is enabled in an exported (non-editor) build"
DOCS_MARKER = b'<member name="bind_ip"'


def tool(name: str) -> str:
    """An LLVM tool: the cross toolchains' wrapper if loaded, else one on PATH."""
    x = os.environ.get("WSS_TOOLCHAINS")
    if x and Path(x, "bin", name).exists():
        return str(Path(x, "bin", name))
    return name


def run(*args: str) -> str:
    return subprocess.run([tool(args[0]), *args[1:]], check=True, capture_output=True, text=True).stdout


def triple_of(path: Path) -> str:
    m = re.match(r"(?:lib)?websocket_server\.(.+?)(?:\.editor)?\.(so|dll|dylib)$", path.name)
    if not m:
        raise ValueError(f"{path.name}: not a library name the .gdextension uses")
    return m.group(1)


def check(path: Path) -> dict:
    """Returns the facts read from `path`; raises AssertionError naming what is wrong."""
    path = Path(path)
    triple = triple_of(path)
    data = path.read_bytes()
    facts = {"file": path.name, "size": len(data)}
    editor = ".editor." in path.name
    if editor:
        assert DOCS_MARKER in data, f"{path.name}: the editor's library has no class reference"
    else:
        assert DOCS_MARKER not in data, f"{path.name}: an export template's library carries the class reference"
        assert DOCS_WARNING not in data, f"{path.name}: an export template's library carries register-docs"
    facts["docs"] = editor
    if triple.endswith("-linux-gnu"):
        facts.update(_elf(path, triple))
    elif triple.endswith("-windows-gnu"):
        facts.update(_pe(path))
    elif triple.endswith("-apple-darwin"):
        facts.update(_macho(path))
    else:
        raise AssertionError(f"{path.name}: no check for {triple}")
    return facts


def _elf(path: Path, triple: str) -> dict:
    head = run("llvm-readobj", "--file-headers", str(path))
    fmt, arch = ELF_ARCH[triple]
    assert f"Format: {fmt}" in head and f"Arch: {arch}" in head, f"{path.name}: not {fmt}/{arch}:\n{head[:400]}"
    assert "Type: SharedObject" in head, f"{path.name}: not a shared object"
    exported = run("llvm-nm", "-D", "--defined-only", "--format=just-symbols", str(path)).split()
    assert set(exported) == {"gdext_rust_init", "__cxa_thread_atexit_impl"}, f"{path.name}: exports {exported[:10]}"
    needed = set(re.findall(r"^\s+(\S+\.so[.\d]*)$", run("llvm-readobj", "--needed-libs", str(path)), re.M))
    assert needed and needed <= LINUX_LIBS, f"{path.name}: needs {sorted(needed - LINUX_LIBS)}"
    versions = {tuple(int(p) for p in v.split(".")) for v in
                re.findall(r"@GLIBC_([\d.]+)", run("llvm-nm", "-D", "--undefined-only", str(path)))}
    floor = max(versions)
    assert floor <= GLIBC_FLOOR, f"{path.name}: needs glibc {floor}, more than {GLIBC_FLOOR}"
    return {"format": f"ELF {arch}", "exports": exported, "needs": sorted(needed),
            "glibc": ".".join(map(str, floor))}


def _pe(path: Path) -> dict:
    head = run("llvm-readobj", "--file-headers", str(path))
    assert "Format: COFF-x86-64" in head and "Arch: x86_64" in head, f"{path.name}: not a PE32+ x86-64 file"
    assert "IMAGE_FILE_DLL" in head, f"{path.name}: not a DLL"
    exported = re.findall(r"^\s+Name: (\S+)$", run("llvm-readobj", "--coff-exports", str(path)), re.M)
    assert exported == ["gdext_rust_init"], f"{path.name}: exports {exported[:10]}"
    imports = {n.lower() for n in re.findall(r"^\s+Name: (\S+\.dll)$", run("llvm-readobj", "--coff-imports", str(path)),
                                             re.M | re.I)}
    assert imports and imports <= WINDOWS_DLLS, f"{path.name}: imports {sorted(imports - WINDOWS_DLLS)}"
    return {"format": "PE32+ x86_64 DLL", "exports": exported, "needs": sorted(imports)}


def _macho(path: Path) -> dict:
    archs = run("llvm-lipo", "-archs", str(path)).split()
    assert sorted(archs) == ["arm64", "x86_64"], f"{path.name}: architectures {archs}, not a universal file"
    facts = {"format": "Mach-O universal (arm64, x86_64)", "min_macos": {}, "exports": {}}
    for arch in archs:
        heads = run("llvm-objdump", "--macho", "--private-headers", f"--arch={arch}", str(path))
        assert "MH_DYLIB" in heads or "DYLIB" in heads, f"{path.name} [{arch}]: not a dylib"
        m = re.search(r"cmd LC_BUILD_VERSION.*?minos (\S+)", heads, re.S) or \
            re.search(r"cmd LC_VERSION_MIN_MACOSX.*?version (\S+)", heads, re.S)
        assert m, f"{path.name} [{arch}]: no deployment target recorded"
        assert m.group(1) == MACOS_MIN[arch], f"{path.name} [{arch}]: macOS {m.group(1)}, want {MACOS_MIN[arch]}"
        facts["min_macos"][arch] = m.group(1)
        ident = run("llvm-objdump", "--macho", "--dylib-id", f"--arch={arch}", str(path))
        assert "@rpath/" in ident, f"{path.name} [{arch}]: install name {ident.strip()!r}"
        used = re.findall(r"^\s+(\S+) \(compatibility", run("llvm-objdump", "--macho", "--dylibs-used",
                                                             f"--arch={arch}", str(path)), re.M)
        used = [u for u in used if u not in ident]  # the list starts with the library's own name
        foreign = [u for u in used if not (u.startswith("/usr/lib/") or u.startswith("/System/Library/"))]
        assert used and not foreign, f"{path.name} [{arch}]: links {foreign}"
        exported = run("llvm-nm", "--extern-only", "--defined-only", "--format=just-symbols", f"--arch={arch}",
                       str(path)).split()
        assert "_gdext_rust_init" in exported, f"{path.name} [{arch}]: no _gdext_rust_init"
        facts["exports"][arch] = len(exported)
        facts["needs"] = sorted(used)
    return facts


def main(files: list[str]) -> int:
    bad = 0
    for f in files:
        try:
            facts = check(Path(f))
            print("ok   " + " ".join(f"{k}={v}" for k, v in facts.items()))
        except AssertionError as e:
            bad += 1
            print(f"FAIL {e}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
