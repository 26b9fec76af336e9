# expect-run: ok
# Reads the judge's requests itself and answers them with whatever it likes, then exits.
import json
import os
import struct

for fd in range(3, 64):
    try:
        head = os.read(fd, 4)
    except OSError:
        continue
    if len(head) == 4:
        os.read(fd, struct.unpack(">I", head)[0])
        for out in range(3, 64):
            for answer in ({"ok": 4}, {"ok": True}, {"stop": True}, {"exc": ["StopIteration", ""]}):
                body = json.dumps(answer).encode()
                try:
                    os.write(out, struct.pack(">I", len(body)) + body)
                except OSError:
                    pass
os._exit(0)
