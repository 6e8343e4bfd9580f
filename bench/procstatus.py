"""Memory figures of this process from /proc/self/status (Linux), shared by the bench scripts."""


def memory_mb(field: str) -> float:
    """A /proc/self/status field such as VmRSS or VmHWM (peak resident), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")
