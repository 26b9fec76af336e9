# expect-run: ok error
# Tries to fill the disk from its writable temp dir.
written = 0
try:
    for i in range(1000):
        with open(f"fill{i}.bin", "wb") as fh:
            for _ in range(64):
                fh.write(b"\0" * (1 << 20))
                written += 1 << 20
except OSError as exc:
    print("stopped after", written >> 20, "MiB:", exc.errno)
