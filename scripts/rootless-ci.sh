#!/usr/bin/env bash
# The rootless proof for CI: as root, make a private TUN node (mode 0666) for an unprivileged
# user, then as that user run `tuntcp serve`, `tuntcp storm --clients 200` and the netns tier
# (TUNTCP_REQUIRE_NETNS=1: a skip is a failure). Usage: scripts/rootless-ci.sh [pytest args]
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
chown "$user" "$dir"

as_user() {
  setpriv --reuid "$user" --regid "$(id -g "$user")" --clear-groups \
    env HOME="$dir" TUNTCP_TUN_DEVICE="$dir/tun" TUNTCP_REQUIRE_NETNS=1 PYTHONDONTWRITEBYTECODE=1 \
        PYTHONPATH="$repo${extra:-}" "$@"
}
py=${TUNTCP_CI_PYTHON:-$repo/.venv/bin/python}
if ! as_user "$py" -c pass 2>/dev/null; then
  # the venv's base interpreter is not readable by $user (e.g. under /root): the system python
  # of the same version with the venv's packages
  read -r ver site < <("$py" -c 'import sys, site; print(f"{sys.version_info[0]}.{sys.version_info[1]}", site.getsitepackages()[0])')
  py=$(PATH=/usr/local/bin:/usr/bin:/bin command -v "python$ver")
  extra=":$site"
fi
cd "$dir"
as_user "$py" -m tuntcp.cli serve --duration 3 --name rootless-ci > serve.log
as_user "$py" -m tuntcp.cli storm --clients 200 --no-pcap --out "$dir/storm" --name rootless-ci > storm.log
echo "rootless-ci: serve and storm --clients 200 ran as $user; $(grep -m1 'cookie connections disagree' storm.log || true)"
# TUNTCP_ROOTLESS_TIER=0: serve and storm only (CI keeps its time budget; the tier runs as root)
[ "${TUNTCP_ROOTLESS_TIER:-1}" = 0 ] && exit 0
as_user "$py" -m pytest -q -p no:cacheprovider --basetemp "$dir/pt" -m netns "$repo/tests" "$@"
