# expect-run: ok error
files = []
try:
    while True:
        files.append(open("/dev/null"))
except OSError as exc:
    print("stopped at", len(files), exc.errno)
