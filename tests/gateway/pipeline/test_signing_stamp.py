"""`seq` is unique per command even when several threads stamp at once (the allowlist
thread and the event loop share one signer)."""

from __future__ import annotations

import sys
import threading

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.pipeline.signing import Ed25519CommandSigner


def test_concurrent_stamps_never_repeat_a_seq():
    signer = Ed25519CommandSigner(Ed25519PrivateKey.generate())
    per_thread, threads = 20_000, 4
    stamped: list[list[int]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads)

    def stamp(out: list[int]) -> None:
        start.wait()
        for _ in range(per_thread):
            out.append(signer.stamp()[0])

    # Switch threads as often as possible, so that an unguarded read-modify-write of
    # `seq` would interleave.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        workers = [threading.Thread(target=stamp, args=(out,)) for out in stamped]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(interval)
    seqs = [seq for out in stamped for seq in out]
    assert len(seqs) == per_thread * threads
    assert len(set(seqs)) == len(seqs)
    for out in stamped:  # each thread sees its own stamps rise
        assert out == sorted(out) and len(set(out)) == len(out)
