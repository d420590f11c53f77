"""Other processes on this machine: is the one that left a file or a hold still running?

Two processes may share one results folder (the app and a CLI run): a ``.part`` download or a
budget hold names its process, so what a dead one left behind can be cleaned up and what a live
one is doing is left alone."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """True when process ``pid`` exists (also when it belongs to another user)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except (OverflowError, ValueError):
        return False  # not a pid at all (a crafted or damaged name)
    return True
