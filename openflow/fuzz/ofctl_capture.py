"""Fake OpenFlow 1.3 switch on a unix socket: records every message ovs-ofctl sends.

Used once to capture the `ofctl-*` seeds in corpus/ (independent encoder, same wire format):

    python3 ofctl_capture.py /tmp/sw.sock /tmp/out &
    ovs-ofctl -O OpenFlow13 --no-names add-flow unix:/tmp/sw.sock "table=0,in_port=3,..."
    ovs-ofctl -O OpenFlow13 --no-names add-group / add-meter / del-flows / dump-flows ...
    ovs-ofctl -O OpenFlow13 --no-names --bundle add-flow ... ; packet-out ...

It answers HELLO, ECHO, BARRIER, FEATURES, bundle control and (with an empty body) multipart
requests, and exits 5 s after the last connection.
"""
import os, socket, struct, sys
path, outdir = sys.argv[1], sys.argv[2]
os.makedirs(outdir, exist_ok=True)
if os.path.exists(path): os.unlink(path)
s = socket.socket(socket.AF_UNIX); s.bind(path); s.listen(4); s.settimeout(5)
n = 0
def recv_exact(c, k):
    b = b""
    while len(b) < k:
        x = c.recv(k - len(b))
        if not x: return None
        b += x
    return b
try:
  while True:
    try: c, _ = s.accept()
    except socket.timeout: break
    c.settimeout(3)
    c.sendall(bytes([4,0,0,16,0,0,0,1, 0,1,0,8,0,0,0,0x10]))
    try:
      while True:
        h = recv_exact(c, 8)
        if not h: break
        v, t, l, xid = struct.unpack("!BBHI", h)
        body = recv_exact(c, l - 8) or b""
        msg = h + body
        n += 1
        open(os.path.join(outdir, "ofctl-%02d-t%d" % (n, t)), "wb").write(msg)
        rep = None
        if t == 2: rep = struct.pack("!BBHI", 4, 3, l, xid) + body
        elif t == 20: rep = struct.pack("!BBHI", 4, 21, 8, xid)
        elif t == 5: rep = struct.pack("!BBHIQIBBxxII", 4, 6, 32, xid, 1, 0, 254, 0, 0x4f, 0)
        elif t == 18:
            mtype = struct.unpack("!H", body[:2])[0]
            rep = struct.pack("!BBHIHHxxxx", 4, 19, 16, xid, mtype, 0)
        elif t == 4:  # bundle control: answer with the matching reply type
            exp, etype, bid, ctype, flags = struct.unpack("!IIIHH", body[:16])
            rb = struct.pack("!IIIHH", exp, etype, bid, ctype + 1, flags)
            rep = struct.pack("!BBHI", 4, 4, 8 + len(rb), xid) + rb
        if rep: c.sendall(rep)
    except socket.timeout: pass
    c.close()
finally:
  os.unlink(path)
