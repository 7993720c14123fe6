# Sourced by the scripts that unpack Debian packages into private prefixes (godot.sh,
# toolchains.sh). Nothing is installed on the system: packages are downloaded with a private apt
# state and unpacked with `dpkg -x`.
#
# debian_mirror: the Debian archive this machine's own apt sources use ($DEBIAN_MIRROR overrides),
#   so no mirror's host name is written into the project.
# apt_prefix DIR SUITE [ARCH...]: a private apt state in DIR for Debian SUITE (default arch amd64);
#   `apt-get update` once; prints nothing. Run apt with APT_CONFIG=DIR/apt.conf.
# apt_unpack DIR ROOT PKG...: downloads PKG and everything it depends on, unpacks into ROOT.

debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  python3 - <<'PY'
import glob, re, sys
# The first source that serves a plain Debian release (not -security, not -updates), in the
# one-line (sources.list) or deb822 (.sources) format.
def plain(suites):
    return any(s and "-" not in s and "/" not in s for s in suites)
found = None
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        line = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(line) >= 3 and line[0] == "deb" and plain([line[2]]) and "debian" in line[1]:
            found = found or line[1]
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for block in re.split(r"\n\s*\n", open(path).read()):
        fields = {}
        for line in block.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            k, v = line.split(":", 1)
            fields[k.strip().lower()] = v.split()
        uris = fields.get("uris", [])
        if "deb" in fields.get("types", []) and plain(fields.get("suites", [])) and uris \
                and "debian" in uris[0] and "security" not in uris[0]:
            found = found or uris[0]
if not found:
    sys.exit("debian.sh: no Debian archive in this machine's apt sources; set DEBIAN_MIRROR")
print(found.rstrip("/"))
PY
}

apt_prefix() {
  local dir=$1 suite=$2 mirror; shift 2
  local archs=("${@:-amd64}")
  mirror=$(debian_mirror) || return 1
  mkdir -p "$dir/etc/apt/apt.conf.d" "$dir/etc/apt/preferences.d" "$dir/var/lib/apt/lists/partial" "$dir/var/cache/apt/archives/partial" "$dir/var/lib/dpkg"
  touch "$dir/var/lib/dpkg/status"
  echo "deb $mirror $suite main" > "$dir/etc/apt/sources.list"
  local a list=""
  for a in "${archs[@]}"; do list+="\"$a\"; "; done
  cat > "$dir/apt.conf" <<CONF
Dir "$dir/";
Dir::State::status "$dir/var/lib/dpkg/status";
Dir::Etc::trusted "/etc/apt/trusted.gpg";
Dir::Etc::trustedparts "/etc/apt/trusted.gpg.d";
Debug::NoLocking "1";
APT::Architecture "amd64";
APT::Architectures { $list};
Acquire::Check-Valid-Until "false";
APT::Install-Recommends "false";
CONF
  APT_CONFIG=$dir/apt.conf apt-get -q update >&2
}

apt_unpack() {
  local dir=$1 root=$2 f; shift 2
  APT_CONFIG=$dir/apt.conf apt-get -q install -y --download-only "$@" >&2 || return 1
  mkdir -p "$root"
  for f in "$dir"/var/cache/apt/archives/*.deb; do dpkg -x "$f" "$root" || return 1; done
  rm -f "$dir"/var/cache/apt/archives/*.deb
}
