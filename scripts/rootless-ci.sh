#!/usr/bin/env bash
# The rootless proof for CI: as root, make a private TUN node (mode 0666) for an unprivileged
# user, then as that user run `tuntcp serve`, `tuntcp storm --clients 200` and the netns tier
# (TUNTCP_REQUIRE_NETNS=1: a skip is a failure). Usage: scripts/rootless-ci.sh [pytest args]
#
# The user gets its own copy of the tree (and of the venv's packages when it cannot read them),
# so a checkout under a private path (/root/...) works and packetdrill builds in a place the
# user may write. Everything runs in a fresh PID namespace: when the stage ends, the kernel kills
# whatever a test left running. The host is not changed: no sysctl, no mount outside the
# namespaces; the node and the copies live in one temp dir that is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
[ "$(id -u)" = 0 ] || { echo "rootless-ci: run as root (it makes the TUN node, then drops privileges)" >&2; exit 2; }
user=${TUNTCP_CI_USER:-nobody}
dir=$(mktemp -d /var/tmp/tuntcp-rootless.XXXXXX)    # /var/tmp: not mounted nodev, unlike many /tmp
trap 'rm -rf "$dir"' EXIT
mknod "$dir/tun" c 10 200
chmod 0666 "$dir/tun"
chmod 0755 "$dir"

# the tree (with .build/packetdrill if the root tier built it), owned by the user
mkdir "$dir/src"
tar -C "$repo" --exclude=./.venv --exclude=./.git --exclude=./out --exclude=./.pytest_cache \
    -cf - . | tar -C "$dir/src" -xf -
pd=$(realpath -m "${TUNTCP_PACKETDRILL_SRC:-$repo/../shared/packetdrill}")
if [ ! -x "$dir/src/.build/packetdrill/packetdrill" ] && [ -d "$pd/gtests/net/packetdrill" ]; then
  mkdir -p "$dir/packetdrill/gtests/net"
  cp -a "$pd/gtests/net/packetdrill" "$dir/packetdrill/gtests/net/"
fi
chown -R "$user" "$dir"

run_as_user() {   # a PID namespace of its own: nothing the stage starts outlives it
  unshare --pid --fork --kill-child --mount-proc \
    setpriv --reuid "$user" --regid "$(id -g "$user")" --clear-groups \
    env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME="$dir" LANG=C.UTF-8 TUNTCP_TUN_DEVICE="$dir/tun" \
        TUNTCP_REQUIRE_NETNS=1 TUNTCP_PACKETDRILL_SRC="$dir/packetdrill" PYTHONDONTWRITEBYTECODE=1 \
        PYTHONPATH="$dir/src" "$@"
}
py=${TUNTCP_CI_PYTHON:-$repo/.venv/bin/python}
if ! run_as_user "$py" -c pass 2>/dev/null; then
  # the venv's base interpreter is not readable by $user (e.g. under /root): a venv of the system
  # python of the same version whose .pth adds the venv's packages (copied if unreadable), so
  # every child python (sys.executable) sees them too
  read -r ver site < <("$py" -c 'import sys, site; print(f"{sys.version_info[0]}.{sys.version_info[1]}", site.getsitepackages()[0])')
  PATH=/usr/local/bin:/usr/bin:/bin "python$ver" -m venv --without-pip "$dir/venv"
  if ! run_as_user ls "$site/trio" >/dev/null 2>&1; then
    cp -a "$site" "$dir/site"
    site=$dir/site
  fi
  echo "$site" > "$dir/venv/lib/python$ver/site-packages/tuntcp-ci.pth"
  printf '#!%s\nimport sys\nfrom tuntcp.cli import main\nsys.exit(main())\n' "$dir/venv/bin/python" \
    > "$dir/venv/bin/tuntcp"      # the console script, as `pip install` makes it
  chmod 0755 "$dir/venv/bin/tuntcp"
  chown -R "$user" "$dir"
  py=$dir/venv/bin/python
fi
cd "$dir"
t0=$SECONDS
run_as_user "$py" -m tuntcp.cli serve --duration 3 --name rootless-ci > serve.log
run_as_user "$py" -m tuntcp.cli storm --clients 200 --no-pcap --out "$dir/storm" --name rootless-ci > storm.log
echo "rootless-ci: serve and storm --clients 200 ran as $user in $((SECONDS - t0)) s;" \
     "$(grep -m1 'cookie connections disagree' storm.log || true)"
# TUNTCP_ROOTLESS_TIER=0: serve and storm only
[ "${TUNTCP_ROOTLESS_TIER:-1}" = 0 ] && exit 0
t0=$SECONDS
run_as_user "$py" -m pytest -q -p no:cacheprovider --basetemp "$dir/pt" -m netns "$dir/src/tests" "$@"
echo "rootless-ci: the netns tier passed as $user in $((SECONDS - t0)) s"
