#!/usr/bin/env bash
# Install the Debian tools tuntcp's tests and scenarios drive, if any is missing.
# Needs root and apt-get; otherwise says what is missing (netns tests then skip with that reason,
# or fail under CI where TUNTCP_REQUIRE_NETNS=1).
set -u
declare -A pkg=( [curl]=curl [socat]=socat [ab]=apache2-utils [wrk]=wrk [hping3]=hping3
                 [tshark]=tshark [tcpdump]=tcpdump [ss]=iproute2 [nstat]=iproute2 [ip]=iproute2
                 [redis-server]=redis-server [redis-benchmark]=redis-tools [redis-cli]=redis-tools
                 [nginx]=nginx [gcc]=gcc [make]=make [bison]=bison [flex]=flex )   # gcc..flex: packetdrill (tests/netns/test_drill_kernel.py)
missing=()
for cmd in "${!pkg[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${pkg[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null \
    || { echo "apt-get install failed for: ${missing[*]}" >&2; exit 1; }
else
  echo "note: missing tools (${missing[*]}); install them as root with apt-get to run every netns test" >&2
fi
