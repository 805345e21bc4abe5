"""Cut a controller short at one of its state writes, as a kill of its process there would
(tests of crash recovery). Every BPF map update or delete is one write, and so is a pinned
document (nf.deploy.write_doc: its rename is the one point that matters).

    for step in itertools.count():
        ...set up...
        try:
            with cut_at(step):
                sk.flip()
        except Killed:
            ...the state a kill before write ``step`` leaves: recover, check...
            continue
        break                               # the action ended before write ``step``
"""
from __future__ import annotations

import contextlib
from typing import Iterator


class Killed(BaseException):
    """Raised instead of write number ``step`` (not an Exception: nothing on the way catches it)."""


@contextlib.contextmanager
def cut_at(step: int) -> Iterator[list[int]]:
    """Inside: writes 0..step-1 happen, write ``step`` raises Killed. Yields [writes so far]."""
    import nf.deploy
    from nf.bpf import Map
    done, inside = [0], [False]
    update, delete, write_doc = Map.update, Map.delete, nf.deploy.write_doc

    def write() -> None:
        if inside[0]:
            return
        if done[0] == step:
            raise Killed(step)
        done[0] += 1

    def cut_update(self, *a, **kw):
        write()
        return update(self, *a, **kw)

    def cut_delete(self, *a, **kw):
        write()
        return delete(self, *a, **kw)

    def cut_write_doc(*a, **kw):
        write()
        inside[0] = True
        try:
            return write_doc(*a, **kw)
        finally:
            inside[0] = False
    Map.update, Map.delete, nf.deploy.write_doc = cut_update, cut_delete, cut_write_doc
    try:
        yield done
    finally:
        Map.update, Map.delete, nf.deploy.write_doc = update, delete, write_doc
