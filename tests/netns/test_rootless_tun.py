"""A rootless lab binds $TUNTCP_TUN_DEVICE on /dev/net/tun in its own mount namespace, so tools
that open /dev/net/tun themselves (packetdrill) get the node the user may open; the host's
/dev/net/tun and mount table are not touched."""
import os
import stat
import subprocess
import sys
import tempfile

import pytest

from tuntcp.harness.netns import TUN_DEVICE_ENV, in_user_namespace

pytestmark = pytest.mark.netns

CHILD = r'''
import fcntl, os, struct
from tuntcp.harness import netns
netns.ensure_privileges()
seen, node = os.stat("/dev/net/tun"), os.stat(netns.tun_device())
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, netns.TUNSETIFF, struct.pack("16sH22x", b"ttbind0", netns.IFF_TUN | netns.IFF_NO_PI))
print((seen.st_dev, seen.st_ino) == (node.st_dev, node.st_ino), netns.in_user_namespace())
'''


def test_rootless_lab_binds_its_tun_node_on_dev_net_tun(netns_available):
    before = os.stat("/dev/net/tun")
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:     # /var/tmp: not nodev
        if in_user_namespace():         # this run is rootless: the node it was given
            node = os.environ[TUN_DEVICE_ENV]
        else:
            node = os.path.join(d, "tun")
            os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(10, 200))
            os.chmod(node, 0o666)
        env = {**os.environ, TUN_DEVICE_ENV: node, "PYTHONPATH": os.pathsep.join(sys.path)}
        # root without CAP_NET_ADMIN / CAP_SYS_ADMIN: the lab goes through user namespaces
        p = subprocess.run(["setpriv", "--bounding-set", "-net_admin,-sys_admin", sys.executable,
                            "-c", CHILD], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["True", "True"]
    after = os.stat("/dev/net/tun")
    assert (after.st_dev, after.st_ino, after.st_mode) == (before.st_dev, before.st_ino, before.st_mode)
    if not in_user_namespace():
        with open("/proc/self/mountinfo") as f:
            assert " /dev/net/tun " not in f.read()
