# A deterministic computation that reports each step, for the python acceptance
# test: its whole output depends only on STEPS, so a run frozen and melted part
# way must write exactly what an uninterrupted run writes.
import hashlib
import sys
import time

STEPS = int(sys.argv[1])
digest = hashlib.sha256()
values = []  # the interpreter's heap carries state across the freeze
x = 1
for i in range(STEPS):
    for _ in range(2000):
        x = (x * 6364136223846793005 + 1442695040888963407) % 2**64
    values.append(x)
    digest.update(x.to_bytes(8, "little"))
    print(f"step {i} {x % 1000003} {digest.hexdigest()[:16]}", flush=True)
    time.sleep(0.02)
print(f"done {len(values)} {sum(values) % 1000000007} {digest.hexdigest()}", flush=True)
