# expect-run: error timeout
# Floods stdout: the file size limit stops it and only a tail is kept.
import sys

line = "x" * 65536 + "\n"
while True:
    sys.stdout.write(line)
