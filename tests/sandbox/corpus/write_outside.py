# expect-run: ok error
# Tries to modify files outside its temp dir (the canary dir is world-writable, so DAC alone would not stop it).
targets = ["__CANARY__/canary.txt", "__CANARY__/new_file.txt", "/etc/passwd", "/usr/lib/python3-pwned",
           "/root/.bashrc", "/home/pwned", "/root/pwned", "/var/tmp/pwned", "/dev/shm/pwned"]
for path in targets:
    try:
        with open(path, "a") as fh:
            fh.write("pwned\n")
        print("WROTE", path)
    except OSError as exc:
        print("blocked", path, exc.errno)
