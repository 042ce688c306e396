"""Drop root after binding port 53, so a compromise of the resolver is not a compromise of root."""

from __future__ import annotations

import os
import pwd

import dns.rdata
import dns.rdataclass
import dns.rdatatype

from resolver.server.errors import StartupError


def _preload_rdata_classes() -> None:
    """Import every rdata module now: dnspython loads them lazily, perhaps from a directory the
    unprivileged user cannot read, at the first record of each type."""
    for rdtype in dns.rdatatype.RdataType:
        for rdclass in (dns.rdataclass.IN, dns.rdataclass.ANY):
            dns.rdata.get_rdata_class(rdclass, rdtype)


def drop_privileges(user: str) -> None:
    """Become `user` (and its primary group, with no supplementary groups) for good."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise StartupError(f"--user: no such user {user!r}") from None
    if os.getuid() == entry.pw_uid:
        return
    if os.geteuid() != 0:
        raise StartupError(f"--user {user}: only root can change to another user")
    _preload_rdata_classes()
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    if os.getuid() != entry.pw_uid or os.geteuid() != entry.pw_uid:
        raise StartupError(f"--user {user}: could not drop root privileges")
