//! Stream sources for the daemon: stdin, unix/TCP sockets (one line per
//! record, several clients at once) and the systemd journal (through
//! `journalctl -f -o json`, resuming from a saved cursor).
//!
//! Each source runs as a task on the daemon's runtime and hands complete
//! lines to the ingest loop in chunks over one bounded channel
//! (`STREAM_QUEUE` chunks of at most `STREAM_CHUNK` bytes), so memory stays
//! bounded. A client's partial line is held in its own buffer of at most
//! `MAX_LINE` bytes; a longer line is dropped and counted. At most
//! `MAX_SOCKET_CLIENTS` clients are served at once; more are refused. A slow
//! or silent client only ever holds its own buffer: other clients and the
//! files keep flowing.

use crate::limits::{MAX_LINE, MAX_SOCKET_CLIENTS, STREAM_CHUNK};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

use tokio::sync::mpsc;

/// Complete lines from a stream source.
#[derive(Debug)]
pub struct Chunk {
    /// `stdin`, `unix:/path`, `tcp:host:port` or `journal`.
    pub source: Arc<str>,
    /// Newline-terminated lines.
    pub data: Vec<u8>,
    /// Over-long lines dropped since the previous chunk.
    pub too_long: u32,
    /// Journal cursor after the last line of `data`.
    pub cursor: Option<String>,
}

/// Where a socket listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketSpec {
    Unix(std::path::PathBuf),
    Tcp(String),
}

impl SocketSpec {
    /// `unix:PATH` or `tcp:HOST:PORT` (Lightmeter's `unix;PATH`/`tcp;HOST:PORT` too).
    ///
    /// # Errors
    /// A message saying what is accepted.
    pub fn parse(s: &str) -> Result<SocketSpec, String> {
        let (kind, rest) = s.split_once([':', ';']).ok_or_else(|| format!("'{s}' is not unix:PATH or tcp:HOST:PORT"))?;
        match kind {
            "unix" if !rest.is_empty() => Ok(SocketSpec::Unix(rest.into())),
            "tcp" if rest.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) => Ok(SocketSpec::Tcp(rest.to_owned())),
            _ => Err(format!("'{s}' is not unix:PATH or tcp:HOST:PORT")),
        }
    }

    pub fn name(&self) -> String {
        match self {
            SocketSpec::Unix(p) => format!("unix:{}", p.display()),
            SocketSpec::Tcp(a) => format!("tcp:{a}"),
        }
    }
}

/// Reads lines from `r` into chunks until end of input.
async fn read_lines(r: impl AsyncRead + Unpin, source: Arc<str>, tx: mpsc::Sender<Chunk>) {
    let mut r = BufReader::with_capacity(16 * 1024, r);
    let mut line = Vec::with_capacity(256);
    let mut chunk = Vec::with_capacity(STREAM_CHUNK);
    let mut too_long = 0u32;
    loop {
        line.clear();
        // Read one line, but never hold more than MAX_LINE bytes of it.
        let mut overflow = false;
        let done = loop {
            let Ok(buf) = r.fill_buf().await else { break true };
            if buf.is_empty() {
                break true;
            }
            let (take, found) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            if !overflow && line.len() + take <= MAX_LINE + 1 {
                line.extend_from_slice(&buf[..take]);
            } else {
                overflow = true;
                line.clear();
            }
            r.consume(take);
            if found {
                break false;
            }
        };
        if overflow {
            too_long += 1;
        } else if line.ends_with(b"\n") {
            chunk.extend_from_slice(&line);
        } else if done && !line.is_empty() {
            // A last line without its newline at end of input.
            chunk.extend_from_slice(&line);
            chunk.push(b'\n');
        }
        // Hand over when the chunk is full or nothing more is buffered.
        if chunk.len() >= STREAM_CHUNK || (r.buffer().is_empty() && (!chunk.is_empty() || too_long > 0)) || done {
            if !chunk.is_empty() || too_long > 0 {
                let c = Chunk {
                    source: source.clone(),
                    data: std::mem::replace(&mut chunk, Vec::with_capacity(STREAM_CHUNK)),
                    too_long,
                    cursor: None,
                };
                too_long = 0;
                if tx.send(c).await.is_err() {
                    return;
                }
            }
            if done {
                return;
            }
        }
    }
}

/// Reads standard input.
pub fn spawn_stdin(tx: mpsc::Sender<Chunk>) {
    tokio::spawn(read_lines(tokio::io::stdin(), Arc::from("stdin"), tx));
}

/// Listens on `spec`, one reading task per client.
///
/// # Errors
/// The socket cannot be bound.
pub async fn spawn_listener(spec: SocketSpec, tx: mpsc::Sender<Chunk>) -> std::io::Result<()> {
    let name: Arc<str> = Arc::from(spec.name());
    let clients = Arc::new(AtomicUsize::new(0));
    match spec {
        SocketSpec::Unix(path) => {
            // A stale socket file from an earlier run would make bind fail.
            if std::fs::symlink_metadata(&path).is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type())) {
                let _ = std::fs::remove_file(&path);
            }
            let l = tokio::net::UnixListener::bind(&path)?;
            tokio::spawn(async move {
                while let Ok((s, _)) = l.accept().await {
                    serve(s, name.clone(), tx.clone(), clients.clone());
                }
            });
        }
        SocketSpec::Tcp(addr) => {
            let l = tokio::net::TcpListener::bind(&addr).await?;
            tokio::spawn(async move {
                while let Ok((s, _)) = l.accept().await {
                    serve(s, name.clone(), tx.clone(), clients.clone());
                }
            });
        }
    }
    Ok(())
}

fn serve<S: AsyncRead + Unpin + Send + 'static>(s: S, name: Arc<str>, tx: mpsc::Sender<Chunk>, clients: Arc<AtomicUsize>) {
    if clients.fetch_add(1, Ordering::Relaxed) >= MAX_SOCKET_CLIENTS {
        clients.fetch_sub(1, Ordering::Relaxed);
        eprintln!("postlens: {name}: more than {MAX_SOCKET_CLIENTS} clients; refusing one");
        return; // dropping the stream closes it
    }
    tokio::spawn(async move {
        read_lines(s, name, tx).await;
        clients.fetch_sub(1, Ordering::Relaxed);
    });
}

/// Follows the journal's mail facility with `journalctl` (path from
/// `POSTLENS_JOURNALCTL`, default `journalctl`), resuming after `cursor`.
/// Each record becomes an RFC 3339 syslog line.
///
/// # Errors
/// `journalctl` cannot be started.
pub fn spawn_journal(cursor: Option<&str>, tx: mpsc::Sender<Chunk>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let exe = std::env::var("POSTLENS_JOURNALCTL").unwrap_or_else(|_| "journalctl".into());
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(["--follow", "--output=json", "--no-pager", "SYSLOG_FACILITY=2"]);
    match &cursor {
        Some(c) => {
            cmd.arg(format!("--after-cursor={c}"));
        }
        None => {
            cmd.arg("--lines=all");
        }
    }
    cmd.stdout(std::process::Stdio::piped()).stdin(std::process::Stdio::null()).kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| std::io::Error::other("journalctl has no stdout"))?;
    Ok(tokio::spawn(async move {
        let _child = child;
        let source: Arc<str> = Arc::from("journal");
        let mut r = BufReader::new(stdout);
        let mut rec = Vec::new();
        let mut chunk = Vec::with_capacity(STREAM_CHUNK);
        let mut last_cursor = None;
        let mut too_long = 0;
        loop {
            rec.clear();
            // Records are bounded: a longer one is read in pieces and dropped.
            let Ok(n) = (&mut r).take(4 * MAX_LINE as u64).read_until(b'\n', &mut rec).await else { break };
            if n == 0 {
                break;
            }
            if !rec.ends_with(b"\n") && rec.len() >= 4 * MAX_LINE {
                too_long += 1;
                // Skip the rest of this record.
                let mut sink = Vec::new();
                while (&mut r).take(MAX_LINE as u64).read_until(b'\n', &mut sink).await.is_ok_and(|k| k > 0) && !sink.ends_with(b"\n") {
                    sink.clear();
                }
                continue;
            }
            if let Some((line, cur)) = journal_line(rec.trim_ascii_end()) {
                chunk.extend_from_slice(&line);
                chunk.push(b'\n');
                last_cursor = Some(cur);
            }
            if chunk.len() >= STREAM_CHUNK || r.buffer().is_empty() {
                let c = Chunk { source: source.clone(), data: std::mem::take(&mut chunk), too_long, cursor: last_cursor.take() };
                too_long = 0;
                if tx.send(c).await.is_err() {
                    return;
                }
            }
        }
        eprintln!("postlens: journalctl stopped");
    }))
}

/// One `journalctl -o json` record → (`RFC3339 host ident[pid]: message`, cursor).
pub fn journal_line(rec: &[u8]) -> Option<(Vec<u8>, String)> {
    #[derive(serde::Deserialize)]
    struct Rec {
        #[serde(rename = "__CURSOR")]
        cursor: String,
        #[serde(rename = "__REALTIME_TIMESTAMP")]
        realtime: String,
        #[serde(rename = "_HOSTNAME")]
        host: Option<String>,
        #[serde(rename = "SYSLOG_IDENTIFIER")]
        ident: Option<String>,
        #[serde(rename = "SYSLOG_PID")]
        syslog_pid: Option<String>,
        #[serde(rename = "_PID")]
        pid: Option<String>,
        #[serde(rename = "MESSAGE")]
        message: Option<serde_json::Value>,
    }
    let r: Rec = serde_json::from_slice(rec).ok()?;
    let micros: i64 = r.realtime.parse().ok()?;
    let t = jiff::Timestamp::from_microsecond(micros).ok()?;
    let msg: Vec<u8> = match r.message? {
        serde_json::Value::String(s) => s.into_bytes(),
        // Non-UTF-8 messages come as an array of bytes.
        serde_json::Value::Array(a) => a.iter().filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok())).collect(),
        _ => return None,
    };
    let mut line = Vec::with_capacity(msg.len() + 80);
    line.extend_from_slice(t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string().as_bytes());
    line.push(b' ');
    line.extend_from_slice(r.host.as_deref().unwrap_or("localhost").as_bytes());
    line.push(b' ');
    line.extend_from_slice(r.ident.as_deref().unwrap_or("unknown").as_bytes());
    if let Some(pid) = r.syslog_pid.or(r.pid) {
        line.push(b'[');
        line.extend_from_slice(pid.as_bytes());
        line.push(b']');
    }
    line.extend_from_slice(b": ");
    line.extend_from_slice(&msg);
    Some((line, r.cursor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_specs() {
        assert_eq!(SocketSpec::parse("unix:/run/p.sock"), Ok(SocketSpec::Unix("/run/p.sock".into())));
        assert_eq!(SocketSpec::parse("unix;/run/p.sock"), Ok(SocketSpec::Unix("/run/p.sock".into())));
        assert_eq!(SocketSpec::parse("tcp:127.0.0.1:5514"), Ok(SocketSpec::Tcp("127.0.0.1:5514".into())));
        assert!(SocketSpec::parse("tcp:nohost").is_err());
        assert!(SocketSpec::parse("udp:1.2.3.4:5").is_err());
    }

    #[test]
    fn journal_records_become_syslog_lines() {
        let rec = br#"{"__CURSOR":"s=abc;i=1","__REALTIME_TIMESTAMP":"1678748431185246","_HOSTNAME":"mx","SYSLOG_IDENTIFIER":"postfix/qmgr","_PID":"77","MESSAGE":"4AA091855DA0: removed"}"#;
        let (line, cur) = journal_line(rec).unwrap();
        assert_eq!(cur, "s=abc;i=1");
        assert_eq!(String::from_utf8(line.clone()).unwrap(), "2023-03-13T23:00:31.185246Z mx postfix/qmgr[77]: 4AA091855DA0: removed");
        assert!(crate::parse::parse(&line).is_ok());
        assert!(journal_line(b"{}").is_none());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn over_long_lines_are_dropped_and_counted() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut input = b"a\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE * 3));
        input.extend_from_slice(b"\nb\nc");
        read_lines(&input[..], Arc::from("t"), tx).await;
        let mut data = Vec::new();
        let mut long = 0;
        while let Some(c) = rx.recv().await {
            data.extend(c.data);
            long += c.too_long;
        }
        assert_eq!(data, b"a\nb\nc\n");
        assert_eq!(long, 1);
    }
}
