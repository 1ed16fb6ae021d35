#!/usr/bin/env python3
"""Stand-in "remote MX" for the postlens end-to-end harness (stdlib only, asyncio).

Decides per recipient local-part (case-insensitive):
  ok*      -> 250 2.1.5
  bounce*  -> 550 5.1.1
  defer*   -> 451 4.3.0 for the first DEFER_COUNT attempts (per address), then 250
  expire*  -> always 451 4.3.0
  other    -> 550 5.1.1
Every SMTP event it answered is appended as one JSON object per line to --log,
so the harness's truth comes from what this server told Postfix.

Usage: remote_mx.py --listen 127.0.0.1:2525 --log mx.jsonl [--pidfile F] [--defer-count 2]
"""
import argparse
import asyncio
import json
import os
import signal
import sys
import time
from email.parser import BytesHeaderParser

DEFER_COUNT = 2
attempts = {}  # rcpt address (lower) -> number of RCPT commands seen
session_seq = 0
queue_seq = 0
LOG = None


def log(obj):
    obj["t"] = round(time.time(), 3)
    LOG.write(json.dumps(obj, sort_keys=True) + "\n")
    LOG.flush()


def addr_of(arg):
    """'TO:<a@b> NOTIFY=...' -> 'a@b'"""
    arg = arg.split(":", 1)[1].strip() if ":" in arg else arg
    if arg.startswith("<"):
        arg = arg[1:arg.find(">")] if ">" in arg else arg[1:]
    else:
        arg = arg.split()[0] if arg.split() else ""
    return arg


def decide(rcpt):
    local = rcpt.split("@", 1)[0].lower()
    key = rcpt.lower()
    n = attempts.get(key, 0) + 1
    attempts[key] = n
    if local.startswith("ok"):
        return n, 250, "2.1.5 Ok"
    if local.startswith("bounce"):
        return n, 550, "5.1.1 <%s>: Recipient address rejected: User unknown in remote test MX" % rcpt
    if local.startswith("defer"):
        if n <= DEFER_COUNT:
            return n, 451, "4.3.0 <%s>: Temporary failure, try again later (attempt %d)" % (rcpt, n)
        return n, 250, "2.1.5 Ok"
    if local.startswith("expire"):
        return n, 451, "4.3.0 <%s>: Temporary failure, never succeeds (attempt %d)" % (rcpt, n)
    return n, 550, "5.1.1 <%s>: unknown test recipient pattern" % rcpt


async def handle(reader, writer):
    global session_seq, queue_seq
    session_seq += 1
    sid = session_seq
    peer = writer.get_extra_info("peername")
    log({"event": "connect", "session": sid, "peer": "%s:%s" % (peer[0], peer[1])})

    async def reply(code, text):
        writer.write(("%d %s\r\n" % (code, text)).encode())
        await writer.drain()

    await reply(220, "mx.remote.test ESMTP postlens-e2e stand-in MX")
    mail_from = None
    rcpts = []  # accepted in this transaction
    try:
        while True:
            line = await asyncio.wait_for(reader.readline(), timeout=300)
            if not line:
                break
            cmdline = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmdline.split(" ", 1)[0].upper()
            arg = cmdline.split(" ", 1)[1] if " " in cmdline else ""
            if verb == "EHLO":
                writer.write(b"250-mx.remote.test\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n")
                await writer.drain()
            elif verb == "HELO":
                await reply(250, "mx.remote.test")
            elif verb == "MAIL":
                mail_from = addr_of(arg)
                rcpts = []
                await reply(250, "2.1.0 Ok")
            elif verb == "RCPT":
                if mail_from is None:
                    await reply(503, "5.5.1 need MAIL first")
                    continue
                rcpt = addr_of(arg)
                n, code, text = decide(rcpt)
                log({"event": "rcpt", "session": sid, "mail_from": mail_from, "rcpt": rcpt,
                     "attempt": n, "code": code})
                if code == 250:
                    rcpts.append(rcpt)
                await reply(code, text)
            elif verb == "DATA":
                if not rcpts:
                    await reply(554, "5.5.1 no valid recipients")
                    continue
                await reply(354, "End data with <CR><LF>.<CR><LF>")
                chunks = []
                while True:
                    dl = await asyncio.wait_for(reader.readline(), timeout=300)
                    if not dl:
                        raise ConnectionError("EOF in DATA")
                    if dl in (b".\r\n", b".\n"):
                        break
                    if dl.startswith(b".."):
                        dl = dl[1:]
                    chunks.append(dl)
                body = b"".join(chunks)
                hdrs = BytesHeaderParser().parsebytes(body)
                queue_seq += 1
                qid = "MX%06d" % queue_seq
                log({"event": "data", "session": sid, "mail_from": mail_from, "rcpts": rcpts,
                     "code": 250, "queue_id": qid, "message_id": hdrs.get("Message-ID"),
                     "e2e_id": hdrs.get("X-E2E-ID"), "subject": hdrs.get("Subject"),
                     "size": len(body)})
                await reply(250, "2.0.0 Ok: queued as %s" % qid)
                mail_from = None
                rcpts = []
            elif verb == "RSET":
                mail_from = None
                rcpts = []
                await reply(250, "2.0.0 Ok")
            elif verb == "NOOP":
                await reply(250, "2.0.0 Ok")
            elif verb == "QUIT":
                await reply(221, "2.0.0 Bye")
                break
            else:
                await reply(502, "5.5.2 Error: command not recognized")
    except (asyncio.TimeoutError, ConnectionError) as e:
        log({"event": "error", "session": sid, "error": repr(e)})
    finally:
        log({"event": "disconnect", "session": sid})
        try:
            writer.close()
            await writer.wait_closed()
        except Exception:
            pass


async def main():
    global LOG, DEFER_COUNT
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:2525")
    ap.add_argument("--log", required=True)
    ap.add_argument("--pidfile")
    ap.add_argument("--defer-count", type=int, default=2)
    a = ap.parse_args()
    DEFER_COUNT = a.defer_count
    LOG = open(a.log, "a", encoding="utf-8")
    host, port = a.listen.rsplit(":", 1)
    server = await asyncio.start_server(handle, host, int(port), reuse_address=True)
    if a.pidfile:
        with open(a.pidfile, "w") as f:
            f.write("%d\n" % os.getpid())
    log({"event": "start", "listen": a.listen, "defer_count": DEFER_COUNT})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    async with server:
        await stop.wait()
    log({"event": "stop"})
    if a.pidfile:
        try:
            os.unlink(a.pidfile)
        except OSError:
            pass


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
