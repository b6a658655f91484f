#!/usr/bin/python3
# Graphite plaintext capture: accepts TCP connections on 127.0.0.1:PORT and
# appends every received line to OUT, until killed.
import socket, sys, threading
port, out = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
f = open(out, "a")
def serve(c):
    buf = b""
    while True:
        d = c.recv(65536)
        if not d:
            break
        buf += d
        *lines, buf = buf.split(b"\n")
        with lock:
            for l in lines:
                f.write(l.decode(errors="replace") + "\n")
            f.flush()
    c.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(16)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
