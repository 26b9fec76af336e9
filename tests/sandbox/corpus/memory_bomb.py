# expect-run: memory killed
# timeout: 8
# Grows without bound: RLIMIT_AS turns it into a MemoryError.
chunks = []
while True:
    chunks.append(bytearray(50 * 1024 * 1024))
