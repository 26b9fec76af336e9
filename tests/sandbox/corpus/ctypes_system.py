# expect-run: ok error
import ctypes

libc = ctypes.CDLL(None)
rc = libc.system(b"touch __CANARY__/pwned_system; echo pwned > __CANARY__/canary.txt")
print("system returned", rc)
