# expect-run: ok error
# Plants symlinks and hard links in its own temp dir pointing outside, then writes through them.
import os

for i, target in enumerate(["__CANARY__/canary.txt", "/etc/hostname"]):
    link = f"link{i}"
    for make in (os.symlink, os.link):
        try:
            if os.path.lexists(link):
                os.remove(link)
            make(target, link)
            with open(link, "a") as fh:
                fh.write("pwned\n")
            print("WROTE via", make.__name__, target)
        except OSError as exc:
            print("blocked", make.__name__, target, exc.errno)
