"""The memory this process may still take: the smallest of the limits it runs under.

``MemAvailable`` says what the machine has; a process can be held to less by

* ``RLIMIT_DATA`` (``ulimit -d``): its data segment (heap and private anonymous mappings,
  what TensorFlow's buffers are): the limit minus ``VmData`` of ``/proc/self/status``;
* ``RLIMIT_AS`` (``ulimit -v``): all of its address space: the limit minus ``VmSize``.
  TensorFlow reserves much address space it never touches (about 2.5 GB after importing it
  and loading a model), so a tight ``RLIMIT_AS`` leaves less than its figure suggests; an
  allocation beyond it makes TensorFlow's oneDNN kernels abort the whole process
  (``mkl_util.h ... 'tensor' Must be non NULL``), with no Python exception at all;
* a control group's ``memory.max`` (cgroup v2) or ``memory.limit_in_bytes`` (v1), found
  through ``/proc/self/cgroup``, of its own group and of every group above it: the limit
  minus what the group uses, not counting the inactive file cache the kernel reclaims
  before it ends a process (``memory.stat``'s ``inactive_file``).

:func:`process_limits` reads them all; ``budget.memory_limit`` takes the smallest of these
and ``MemAvailable``.  The readers take their files' locations as arguments, so that
tests can point them at files of their own.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

__all__ = ["MemoryLimit", "cgroup_limits", "process_limits", "rlimits"]

# a limit at or above this is "no limit" (cgroup v1 writes 2**63 rounded down to a page)
_UNLIMITED = 2**60

PROC_SELF = "/proc/self"
CGROUP_V2_ROOTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")
CGROUP_V1_ROOT = "/sys/fs/cgroup/memory"


@dataclass(frozen=True)
class MemoryLimit:
    """What one limit leaves to this process.

    Attributes:
        bytes: the bytes it may still allocate under this limit (never below 0).
        name: the limit, as the system calls it (``"RLIMIT_DATA"``, ``"cgroup memory.max"``,
            ``"MemAvailable"``).
        detail: the limit and what is used of it, for messages
            (``"a 4.0 GB data segment limit, 0.7 GB used"``).
    """

    bytes: int
    name: str
    detail: str


def _gb(n: float) -> str:
    return f"{n / 1024**3:.1f} GB"


def _status(proc: str) -> dict[str, int]:
    """``VmSize``, ``VmData``... of ``<proc>/status`` in bytes."""
    out: dict[str, int] = {}
    try:
        with open(os.path.join(proc, "status")) as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if key.startswith("Vm") and len(parts) == 2 and parts[1] == "kB":
                    out[key] = int(parts[0]) * 1024
    except (OSError, ValueError):
        pass
    return out


def rlimits(proc: str = PROC_SELF, getrlimit=resource.getrlimit) -> list[MemoryLimit]:
    """The room ``RLIMIT_DATA`` and ``RLIMIT_AS`` leave (the soft limits, which are the
    ones enforced), minus ``VmData`` and ``VmSize``; none for a limit that is not set."""
    status = _status(proc)
    out = []
    for name, used_key, what in (
        ("RLIMIT_DATA", "VmData", "data segment"),
        ("RLIMIT_AS", "VmSize", "address space"),
    ):
        kind = getattr(resource, name, None)
        if kind is None:
            continue
        try:
            soft, _hard = getrlimit(kind)
        except (OSError, ValueError):
            continue
        if soft == resource.RLIM_INFINITY or soft < 0 or soft >= _UNLIMITED:
            continue
        used = status.get(used_key, 0)
        out.append(
            MemoryLimit(
                bytes=max(0, int(soft) - used),
                name=name,
                detail=f"a {_gb(soft)} {what} limit, {_gb(used)} used ({used_key})",
            )
        )
    return out


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _inactive_file(path: str, key: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[0] == key:
                    return int(parts[1])
    except (OSError, ValueError):
        pass
    return 0


def _ancestors(rel: str) -> list[str]:
    """``/a/b`` -> ``["/a/b", "/a", "/"]``."""
    parts = [p for p in rel.split("/") if p]
    return ["/" + "/".join(parts[:i]) for i in range(len(parts), -1, -1)]


def _group_dirs(root: str, rel: str) -> list[str]:
    """The directories of ``rel`` and its parents under ``root``; a process in a container
    sees its own group as the root of the hierarchy (the path ``/proc/self/cgroup`` names is
    then absent, and ``root`` itself holds its limit)."""
    dirs = [os.path.join(root, a.lstrip("/")) for a in _ancestors(rel)]
    found = [d for d in dirs if os.path.isdir(d)]
    return found or ([root] if os.path.isdir(root) else [])


def cgroup_limits(
    proc: str = PROC_SELF,
    v2_roots: tuple[str, ...] = CGROUP_V2_ROOTS,
    v1_root: str = CGROUP_V1_ROOT,
) -> list[MemoryLimit]:
    """The room of the tightest control group above this process, for cgroup v2
    (``memory.max - memory.current``) and v1 (``memory.limit_in_bytes -
    memory.usage_in_bytes``), each not counting the inactive file cache."""
    try:
        with open(os.path.join(proc, "cgroup")) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    v2_rel = v1_rel = None
    for line in lines:
        hid, _, rest = line.partition(":")
        controllers, _, rel = rest.partition(":")
        if hid == "0" and controllers == "":
            v2_rel = rel
        elif "memory" in controllers.split(","):
            v1_rel = rel
    candidates: list[MemoryLimit] = []
    files = []
    if v2_rel is not None:
        for root in v2_roots:
            for d in _group_dirs(root, v2_rel):
                files.append(("memory.max", d, "memory.current", "inactive_file"))
    if v1_rel is not None:
        for d in _group_dirs(v1_root, v1_rel):
            files.append(
                ("memory.limit_in_bytes", d, "memory.usage_in_bytes", "total_inactive_file")
            )
    for limit_file, d, usage_file, inactive_key in files:
        limit = _read_int(os.path.join(d, limit_file))
        if limit is None or limit >= _UNLIMITED:
            continue
        usage = _read_int(os.path.join(d, usage_file)) or 0
        usage = max(0, usage - _inactive_file(os.path.join(d, "memory.stat"), inactive_key))
        candidates.append(
            MemoryLimit(
                bytes=max(0, limit - usage),
                name=f"cgroup {limit_file}",
                detail=f"a {_gb(limit)} control group limit ({d}), {_gb(usage)} used",
            )
        )
    return [min(candidates, key=lambda m: m.bytes)] if candidates else []


def process_limits() -> list[MemoryLimit]:
    """Every limit this process runs under besides the machine's memory (see the module's
    documentation); an empty list when none is set."""
    return rlimits() + cgroup_limits()
