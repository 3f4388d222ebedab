# One SCTP INIT to ADDRESS:PORT from a raw socket, then listen for an ICMP
# error back: prints "icmp TYPE" and exits 0 when one comes (the packet got
# past the host's INPUT hook to its stack, which has no SCTP here and answers
# "protocol unreachable" / "parameter problem"), "silence" and exits 1 when
# none comes before the timeout (dropped). For sctp-proxy.test.ts: no SCTP
# socket is needed on either side, so it works on a kernel without SCTP.
# Usage: sctp_probe.py ADDRESS PORT [TIMEOUT_S]
import socket, struct, sys, select, time
dst, port = sys.argv[1], int(sys.argv[2])
v6 = ":" in dst
def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xffffffff
init = struct.pack("!BBHIIHHI", 1, 0, 20, 0x12345678, 65535, 1, 1, 1)
hdr = struct.pack("!HHII", 40000, port, 0, 0)
pkt = hdr + init
c = crc32c(pkt)
pkt = hdr[:8] + struct.pack("<I", c) + init
fam = socket.AF_INET6 if v6 else socket.AF_INET
s = socket.socket(fam, socket.SOCK_RAW, 132)
ic = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
s.sendto(pkt, (dst, 0))
end = time.time() + float(sys.argv[3] if len(sys.argv) > 3 else 1.5)
while time.time() < end:
    r, _, _ = select.select([ic, s], [], [], max(0, end - time.time()))
    if not r: break
    for sock in r:
        data, addr = sock.recvfrom(2000)
        if sock is s:
            # A kernel with SCTP answers an INIT to a closed port with an ABORT.
            if addr[0] == dst or (not v6 and addr[0] == socket.gethostbyname(dst)):
                print("sctp reply"); sys.exit(0)
            continue
        t = data[0] if v6 else data[(data[0] & 15) * 4]
        if (v6 and t in (1, 4)) or (not v6 and t == 3):
            print("icmp", t); sys.exit(0)
print("silence"); sys.exit(1)
