#!/usr/bin/python3
"""A tiny stand-in for the EC2 instance metadata service (IMDSv2), for tests.

Answers the three requests dockinit-vpc-dns makes, the way EC2 does:

  PUT /latest/api/token            needs X-aws-ec2-metadata-token-ttl-seconds
                                   (1-21600, else 400); returns a token
  GET /latest/meta-data/mac        needs X-aws-ec2-metadata-token (else 401)
  GET /latest/meta-data/network/interfaces/macs/<MAC>/vpc-ipv4-cidr-block
                                   the VPC CIDR (default 198.51.100.0/24, so the
                                   VPC resolver is 198.51.100.2); 404 for
                                   another MAC

Anything else is 404. Failure modes for other tests, one flag each:

  --refuse-token     PUT /latest/api/token answers 403 (IMDSv2 disabled/blocked)
  --no-token-check   accept GETs without a token (IMDSv1 behaviour)
  --malformed-mac    /mac answers "not-a-mac"
  --malformed-cidr   the CIDR answer is "198.51.100.0/abc"
  --no-cidr          the CIDR path answers 404 (IPv6-only VPC)
  --delay SECONDS    sleep before every answer (slow metadata)

Stdlib only (runs under the system python3). Prints "listening ADDR:PORT" on
stdout once the socket is bound, and one line per request on stderr.
"""
import argparse
import http.server
import secrets
import sys
import time

TOKEN_PATH = "/latest/api/token"
MAC_PATH = "/latest/meta-data/mac"
CIDR_PATH = "/latest/meta-data/network/interfaces/macs/{mac}/vpc-ipv4-cidr-block"


def parse_args(argv):
    p = argparse.ArgumentParser(description="fake EC2 instance metadata service (IMDSv2)")
    p.add_argument("--bind", default="169.254.169.254")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--mac", default="02:00:5e:00:53:01")
    p.add_argument("--cidr", default="198.51.100.0/24")
    p.add_argument("--refuse-token", action="store_true")
    p.add_argument("--no-token-check", action="store_true")
    p.add_argument("--malformed-mac", action="store_true")
    p.add_argument("--malformed-cidr", action="store_true")
    p.add_argument("--no-cidr", action="store_true")
    p.add_argument("--delay", type=float, default=0.0)
    return p.parse_args(argv)


def make_handler(opts):
    tokens = set()

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "EC2ws"
        sys_version = ""

        def log_message(self, fmt, *args):  # noqa: N802 (stdlib name)
            sys.stderr.write("fake-imds: %s %s\n" % (self.address_string(), fmt % args))
            sys.stderr.flush()

        def answer(self, status, body=""):
            if opts.delay:
                time.sleep(opts.delay)
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self):  # noqa: N802
            if self.path != TOKEN_PATH:
                return self.answer(404)
            if opts.refuse_token:
                return self.answer(403)
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.answer(400)
            token = secrets.token_urlsafe(32)
            tokens.add(token)
            self.answer(200, token)

        def do_GET(self):  # noqa: N802
            if not opts.no_token_check and self.headers.get("X-aws-ec2-metadata-token") not in tokens:
                return self.answer(401)
            if self.path == MAC_PATH:
                return self.answer(200, "not-a-mac" if opts.malformed_mac else opts.mac)
            if self.path == CIDR_PATH.format(mac=opts.mac) and not opts.no_cidr:
                return self.answer(200, "198.51.100.0/abc" if opts.malformed_cidr else opts.cidr)
            self.answer(404)

    return Handler


def main(argv):
    opts = parse_args(argv)
    server = http.server.ThreadingHTTPServer((opts.bind, opts.port), make_handler(opts))
    print("listening %s:%d" % (opts.bind, opts.port), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
