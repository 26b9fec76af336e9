# expect-run: ok error
for path in ["/etc/shadow", "/etc/gshadow", "/root/.bash_history", "/etc/passwd", "__CANARY__/secret.txt"]:
    try:
        with open(path) as fh:
            print("READ", path, fh.read())
    except OSError as exc:
        print("blocked", path, exc.errno)
