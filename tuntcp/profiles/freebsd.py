"""FreeBSD profiles (freebsd-9, freebsd-14): filled by the FreeBSD personality work."""
