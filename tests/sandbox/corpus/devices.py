# expect-run: ok error
for path in ["/dev/mem", "/dev/kmsg", "/dev/vda", "/sys/kernel/notes", "/proc/kcore", "/dev/tty"]:
    try:
        with open(path, "rb") as fh:
            print("READ", path, fh.read(8))
    except OSError as exc:
        print("blocked", path, exc.errno)
