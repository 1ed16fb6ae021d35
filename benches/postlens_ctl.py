"""The daemon's control socket from Python (benchmarks): the same request the
`postlens` CLI sends (POST /cli with its command line), without starting a
process per query."""
import http.client
import json
import socket


class _Unix(http.client.HTTPConnection):
    def __init__(self, ws, timeout):
        super().__init__("postlens", timeout=timeout)
        self._path = ws + "/postlens.sock"

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


def call(ws, argv, timeout=60):
    """Runs `postlens ARGV --workspace WS` in the daemon: (code, stdout, stderr)."""
    c = _Unix(ws, timeout)
    c.request("POST", "/cli", body=json.dumps(list(argv) + ["--workspace", ws]))
    a = json.loads(c.getresponse().read())
    c.close()
    return a.get("code", 1), a.get("stdout", ""), a.get("stderr", "")


def status(ws):
    """`status --json` of the running daemon, or None."""
    code, out, _ = call(ws, ["status", "--json"])
    return json.loads(out) if code == 0 else None
