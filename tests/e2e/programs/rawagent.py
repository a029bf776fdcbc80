# SPDX-License-Identifier: MIT
"""A minimal agent speaking the wire protocol directly (docs/protocol.md), for the limits and
identity tests: it can claim any pid and runs under any uid or pid namespace the test puts it in.
Commands on stdin, one per line, answers on stdout:
  sample      send one SAMPLE                  -> "sent"
  check       is the connection still open?    -> "open" | "closed"
  relogin UID drop to uid/gid UID, reconnect, HELLO + SAMPLE  -> "ready <pid> connected"
  goodbye     send GOODBYE and exit
  quit        exit without a word
The first line printed is "ready <pid> <connected|refused>" after HELLO and one SAMPLE."""
import argparse
import json
import os
import socket
import struct
import sys
import time


def frame(ftype, payload):
    data = json.dumps(payload).encode()
    return b"HWP\0" + bytes([1, ftype, 0, 0]) + struct.pack(">I", len(data)) + data


def still_open(sock):
    """Drain what the daemon sent (WELCOME); EOF or a reset means it closed us."""
    sock.setblocking(False)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("--claim-pid", type=int, default=0)
    ap.add_argument("--service", default="rawagent")
    ap.add_argument("--interval", type=float, default=1.0)
    args = ap.parse_args()
    seq = 0
    hello = {"protocol": 1, "agent_version": "raw", "pid": args.claim_pid or os.getpid(),
             "service": args.service, "hostname": "test", "interval": args.interval, "argv": ["rawagent"]}

    def login():
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(args.socket)
        except OSError as e:
            print("ready %d refused %s" % (os.getpid(), e.__class__.__name__), flush=True)
            return None
        try:
            sock.sendall(frame(1, hello))
            sock.sendall(frame(2, {"seq": seq, "time": time.time(), "process": {"rss_bytes": 1 << 20}}))
        except OSError:
            pass
        # "check" says whether the daemon accepted the HELLO.
        print("ready %d connected" % os.getpid(), flush=True)
        return sock

    sock = login()
    if not sock:
        return
    for line in sys.stdin:
        cmd = line.strip()
        if cmd.startswith("relogin "):
            uid = int(cmd.split()[1])
            sock.close()
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            seq += 1
            sock = login()
            if not sock:
                return
            continue
        if cmd == "sample":
            seq += 1
            try:
                sock.sendall(frame(2, {"seq": seq, "time": time.time(), "process": {"rss_bytes": 1 << 20}}))
            except OSError:
                pass
            print("sent", flush=True)
        elif cmd == "check":
            print("open" if still_open(sock) else "closed", flush=True)
        elif cmd == "goodbye":
            seq += 1
            sock.sendall(frame(3, {"seq": seq, "time": time.time(), "process": {"rss_bytes": 1 << 20},
                                   "reason": "exit"}))
            return
        elif cmd == "quit":
            return


if __name__ == "__main__":
    main()
