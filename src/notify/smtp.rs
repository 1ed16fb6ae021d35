//! E-mail out: a small SMTP client (RFC 5321 submission with STARTTLS or
//! implicit TLS through rustls, AUTH PLAIN/LOGIN), and the local
//! `sendmail -t -i`.
//!
//! One message per connection, no pipelining. Bounds: the whole exchange
//! has one deadline (every read and write gets the time left), a reply is
//! read up to [`MAX_REPLY`] bytes, and a sendmail that outlives the
//! deadline is killed. Errors quote the server's reply, never a password.

use super::SendError;
use super::config::SmtpSecurity;
use super::net::{self, Stream};
use base64::Engine as _;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest reply accepted (all lines of a multi-line reply together): an
/// EHLO answer is a few hundred bytes; we restrict that to 16 KiB so a
/// hostile server cannot make us buffer without end.
const MAX_REPLY: usize = 16 * 1024;

/// Where and how to submit.
pub(crate) struct Submission<'a> {
    pub host: &'a str,
    pub port: u16,
    pub security: SmtpSecurity,
    /// (username, password)
    pub auth: Option<(&'a str, &'a str)>,
    pub from: &'a str,
    pub to: &'a [String],
    /// Needed unless `security` is `None`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

fn broke(what: &str, e: &std::io::Error) -> SendError {
    SendError::Smtp { code: None, text: format!("{what}: {e}") }
}

/// A reply: its code and its lines' texts.
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    fn text(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" / "))
    }
}

/// One SMTP session.
struct Session {
    s: Stream,
    /// Bytes read past the last reply. Invariant: empty when TLS starts
    /// (anything there was sent in clear before it and must be refused).
    buf: Vec<u8>,
    deadline: Instant,
}

impl Session {
    /// The time left, set as the socket's read and write timeout.
    fn arm(&self) -> std::io::Result<()> {
        self.s.arm(self.deadline)
    }

    fn write_all(&mut self, what: &str, b: &[u8]) -> Result<(), SendError> {
        self.arm().and_then(|()| self.s.write_all(b)).and_then(|()| self.s.flush()).map_err(|e| broke(what, &e))
    }

    /// Reads one (possibly multi-line) reply.
    fn reply(&mut self, what: &str) -> Result<Reply, SendError> {
        let mut lines = Vec::new();
        loop {
            let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n").or_else(|| self.buf.iter().position(|&b| b == b'\n')) else {
                if self.buf.len() > MAX_REPLY {
                    return Err(SendError::Smtp { code: None, text: format!("{what}: reply longer than 16 KiB") });
                }
                let mut chunk = [0u8; 2048];
                self.arm().map_err(|e| broke(what, &e))?;
                let n = self.s.read(&mut chunk).map_err(|e| broke(what, &e))?;
                if n == 0 {
                    return Err(SendError::Smtp { code: None, text: format!("{what}: the server closed the connection") });
                }
                self.buf.extend_from_slice(&chunk[..n]);
                continue;
            };
            let line: Vec<u8> = self.buf.drain(..end).collect();
            let skip = if self.buf.first() == Some(&b'\r') { 2 } else { 1 };
            self.buf.drain(..skip.min(self.buf.len()));
            let line = String::from_utf8_lossy(&line).into_owned();
            let code = line.get(..3).and_then(|c| c.parse::<u16>().ok()).filter(|c| (200..600).contains(c));
            let Some(code) = code else {
                return Err(SendError::Smtp { code: None, text: format!("{what}: not an SMTP reply: {}", super::format::cut(&line, 100)) });
            };
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").trim_end().chars().filter(|c| !c.is_control()).collect());
            if lines.len() > 200 {
                return Err(SendError::Smtp { code: None, text: format!("{what}: reply of too many lines") });
            }
            if !more {
                return Ok(Reply { code, lines });
            }
        }
    }

    /// Sends `line` (CRLF added) and reads the reply, which must be in the
    /// class of `want` (2 for 2xx, 3 for 3xx). `what` names the step in
    /// errors: it never holds a secret, even when `line` does.
    fn command(&mut self, what: &str, line: &str, want: u16) -> Result<Reply, SendError> {
        self.write_all(what, format!("{line}\r\n").as_bytes())?;
        self.expect(what, want)
    }

    fn expect(&mut self, what: &str, want: u16) -> Result<Reply, SendError> {
        let r = self.reply(what)?;
        if r.code / 100 == want { Ok(r) } else { Err(SendError::Smtp { code: Some(r.code), text: format!("{what}: {}", r.text()) }) }
    }

    fn start_tls(self, host: &str, tls: &Arc<rustls::ClientConfig>) -> Result<Session, SendError> {
        if !self.buf.is_empty() {
            return Err(SendError::Smtp { code: None, text: "STARTTLS: the server sent data before TLS began".into() });
        }
        let s = self.s.into_tls(host, tls, self.deadline).map_err(|e| broke("TLS", &e))?;
        Ok(Session { s, buf: Vec::new(), deadline: self.deadline })
    }
}

/// The EHLO keywords (first word of each line after the greeting), upper case.
fn keywords(r: &Reply) -> Vec<String> {
    r.lines.iter().skip(1).map(|l| l.to_ascii_uppercase()).collect()
}

/// `message` with a dot doubled at the start of each line, and the end mark.
fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 16);
    let mut at_line_start = true;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Submits `message` (CRLF line ends) over SMTP within `timeout`.
pub(crate) fn send(sub: &Submission<'_>, message: &[u8], timeout: Duration) -> Result<(), SendError> {
    let deadline = Instant::now() + timeout;
    let target = format!("{}:{}", sub.host, sub.port);
    let tcp = net::connect(sub.host, sub.port, deadline).map_err(|e| broke(&format!("connecting to {target}"), &e))?;
    let helo = tcp.local_literal();
    let need_tls = || sub.tls.as_ref().ok_or_else(|| SendError::Config("no TLS configuration".into()));
    let mut s = Session { s: tcp, buf: Vec::new(), deadline };
    if sub.security == SmtpSecurity::Tls {
        s = s.start_tls(sub.host, need_tls()?)?;
    }
    s.expect("greeting", 2)?;
    let mut ehlo = s.command("EHLO", &format!("EHLO {helo}"), 2)?;
    if sub.security == SmtpSecurity::Starttls {
        if !keywords(&ehlo).iter().any(|k| k == "STARTTLS") {
            return Err(SendError::Smtp { code: None, text: format!("{target} does not offer STARTTLS (security: starttls requires it)") });
        }
        s.command("STARTTLS", "STARTTLS", 2)?;
        s = s.start_tls(sub.host, need_tls()?)?;
        ehlo = s.command("EHLO", &format!("EHLO {helo}"), 2)?;
    }
    if let Some((user, pass)) = sub.auth {
        let mechs: Vec<String> =
            keywords(&ehlo).iter().filter_map(|k| k.strip_prefix("AUTH").map(|m| m.trim_start_matches('=').to_owned())).collect();
        let offers = |m: &str| mechs.iter().any(|l| l.split_whitespace().any(|w| w == m));
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        if offers("PLAIN") {
            let token = b64(format!("\0{user}\0{pass}").as_bytes());
            s.command("AUTH PLAIN", &format!("AUTH PLAIN {token}"), 2)?;
        } else if offers("LOGIN") {
            s.command("AUTH LOGIN", "AUTH LOGIN", 3)?;
            s.command("AUTH LOGIN (username)", &b64(user.as_bytes()), 3)?;
            s.command("AUTH LOGIN (password)", &b64(pass.as_bytes()), 2)?;
        } else {
            return Err(SendError::Smtp { code: None, text: format!("{target} offers neither AUTH PLAIN nor AUTH LOGIN here") });
        }
    }
    s.command(&format!("MAIL FROM <{}>", sub.from), &format!("MAIL FROM:<{}>", sub.from), 2)?;
    for r in sub.to {
        s.command(&format!("RCPT TO <{r}>"), &format!("RCPT TO:<{r}>"), 2)?;
    }
    s.command("DATA", "DATA", 3)?;
    s.write_all("DATA", &dot_stuff(message))?;
    s.expect("end of DATA", 2)?;
    // The message is accepted; a failed QUIT changes nothing.
    let _ = s.command("QUIT", "QUIT", 2);
    Ok(())
}

/// Hands `message` to the local MTA: `PATH -t -i -f FROM` (recipients from
/// the headers), within `timeout`; a slower sendmail is killed.
pub(crate) fn sendmail(path: &Path, from: &str, message: &[u8], timeout: Duration) -> Result<(), SendError> {
    use std::process::{Command, Stdio};
    let deadline = Instant::now() + timeout;
    let name = path.display();
    let mut child = Command::new(path)
        .args(["-t", "-i", "-f", from])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SendError::Sendmail(format!("{name}: {e}")))?;
    // Local line ends for a local program. The message is far smaller than
    // a pipe's buffer, so this write does not wait for the child.
    let local: Vec<u8> = String::from_utf8_lossy(message).replace("\r\n", "\n").into_bytes();
    let wrote = child.stdin.take().map(|mut i| i.write_all(&local));
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(SendError::Sendmail(format!("{name} did not finish within {} s", timeout.as_secs())));
            }
            Err(e) => return Err(SendError::Sendmail(format!("{name}: {e}"))),
        }
    };
    let mut err = Vec::new();
    if let Some(e) = child.stderr.take() {
        let _ = e.take(1024).read_to_end(&mut err);
    }
    let err = String::from_utf8_lossy(&err).split_whitespace().collect::<Vec<_>>().join(" ");
    if !status.success() {
        return Err(SendError::Sendmail(format!("{name} exited with {status}: {err}")));
    }
    if let Some(Err(e)) = wrote {
        return Err(SendError::Sendmail(format!("writing to {name}: {e}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_are_stuffed() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n..\r\n"), b"a\r\n..b\r\n...\r\n.\r\n");
        assert_eq!(dot_stuff(b".x"), b"..x\r\n.\r\n");
    }

    /// A scripted server: answers each line it reads with the next reply.
    fn server(replies: Vec<&'static str>) -> (u16, std::thread::JoinHandle<Vec<String>>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut r = std::io::BufReader::new(c.try_clone().unwrap());
            let mut seen = Vec::new();
            let mut replies = replies.into_iter();
            c.write_all(replies.next().unwrap().as_bytes()).unwrap();
            let mut in_data = false;
            for reply in replies {
                loop {
                    let mut line = String::new();
                    if std::io::BufRead::read_line(&mut r, &mut line).unwrap() == 0 {
                        return seen;
                    }
                    let line = line.trim_end().to_owned();
                    let end_of_data = in_data && line == ".";
                    seen.push(line.clone());
                    if in_data && !end_of_data {
                        continue;
                    }
                    in_data = line == "DATA";
                    break;
                }
                c.write_all(reply.as_bytes()).unwrap();
            }
            seen
        });
        (port, h)
    }

    fn sub<'a>(port: u16, auth: Option<(&'a str, &'a str)>, to: &'a [String]) -> Submission<'a> {
        Submission { host: "127.0.0.1", port, security: SmtpSecurity::None, auth, from: "pl@example.org", to, tls: None }
    }

    #[test]
    fn a_whole_session_with_auth_login() {
        let (port, h) = server(vec![
            "220 test ESMTP\r\n",
            "250-test\r\n250-AUTH LOGIN\r\n250 8BITMIME\r\n",
            "334 VXNlcm5hbWU6\r\n",
            "334 UGFzc3dvcmQ6\r\n",
            "235 ok\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "354 go\r\n",
            "250 queued\r\n",
            "221 bye\r\n",
        ]);
        let to = ["a@example.org".to_owned()];
        send(&sub(port, Some(("u", "pw")), &to), b"Subject: x\r\n\r\n.hi\r\n", Duration::from_secs(5)).unwrap();
        let seen = h.join().unwrap();
        assert_eq!(
            seen,
            [
                "EHLO [127.0.0.1]",
                "AUTH LOGIN",
                "dQ==",
                "cHc=",
                "MAIL FROM:<pl@example.org>",
                "RCPT TO:<a@example.org>",
                "DATA",
                "Subject: x",
                "",
                "..hi",
                ".",
                "QUIT"
            ]
        );
    }

    #[test]
    fn a_refused_recipient_is_named_and_permanent() {
        let (port, h) = server(vec!["220 t\r\n", "250 t\r\n", "250 ok\r\n", "550 5.1.1 <nobody@example.org>: no such user\r\n"]);
        let to = ["nobody@example.org".to_owned()];
        let e = send(&sub(port, None, &to), b"x\r\n", Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.to_string(), "SMTP: RCPT TO <nobody@example.org>: 550 5.1.1 <nobody@example.org>: no such user");
        assert!(e.is_permanent());
        drop(h);
    }

    #[test]
    fn starttls_is_required_when_asked_for() {
        let (port, h) = server(vec!["220 t\r\n", "250-t\r\n250 PIPELINING\r\n"]);
        let to = ["a@example.org".to_owned()];
        let s = Submission { security: SmtpSecurity::Starttls, tls: Some(net::tls_client(None).unwrap()), ..sub(port, None, &to) };
        let e = send(&s, b"x\r\n", Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains("does not offer STARTTLS"), "{e}");
        drop(h);
    }

    #[test]
    fn a_reply_smuggled_before_tls_is_refused() {
        // The STARTTLS answer comes with a second, injected line in clear.
        let (port, h) = server(vec!["220 t\r\n", "250-t\r\n250 STARTTLS\r\n", "220 go ahead\r\n250 injected\r\n"]);
        let to = ["a@example.org".to_owned()];
        let s = Submission { security: SmtpSecurity::Starttls, tls: Some(net::tls_client(None).unwrap()), ..sub(port, None, &to) };
        let e = send(&s, b"x\r\n", Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.to_string(), "SMTP: STARTTLS: the server sent data before TLS began");
        drop(h);
    }

    #[test]
    fn the_password_is_not_in_the_error() {
        let (port, h) = server(vec!["220 t\r\n", "250-t\r\n250 AUTH PLAIN\r\n", "535 5.7.8 authentication failed\r\n"]);
        let to = ["a@example.org".to_owned()];
        let e = send(&sub(port, Some(("user", "s3cret-pass")), &to), b"x\r\n", Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.to_string(), "SMTP: AUTH PLAIN: 535 5.7.8 authentication failed");
        drop(h);
    }

    #[test]
    fn a_silent_server_times_out() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let to = ["a@example.org".to_owned()];
        let t0 = Instant::now();
        let e = send(&sub(port, None, &to), b"x\r\n", Duration::from_millis(300)).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
        assert!(e.to_string().starts_with("SMTP: greeting:"), "{e}");
        drop(l);
    }

    #[test]
    fn sendmail_errors_and_timeouts() {
        let e = sendmail(Path::new("/nonexistent/sendmail"), "a@example.org", b"x", Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/sendmail"), "{e}");
        let e = sendmail(Path::new("/bin/false"), "a@example.org", b"x", Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains("exited with"), "{e}");
        // Scripts stand in for sendmail (`sleep` would exit at once on `-t`).
        let d = std::env::temp_dir().join(format!("postlens-sendmail-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let slow = d.join("slow");
        std::fs::write(&slow, "#!/bin/sh\nexec sleep 30\n").unwrap();
        let mut p = std::fs::metadata(&slow).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o755);
        std::fs::set_permissions(&slow, p).unwrap();
        let t0 = Instant::now();
        let e = sendmail(&slow, "a@example.org", b"x", Duration::from_millis(200)).unwrap_err();
        assert!(e.to_string().contains("did not finish"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(5));
        let got = d.join("got");
        let cat = d.join("cat");
        std::fs::write(&cat, format!("#!/bin/sh\necho \"$@\" > {0}.args\ncat > {0}\n", got.display())).unwrap();
        std::fs::set_permissions(&cat, std::fs::metadata(&slow).unwrap().permissions()).unwrap();
        sendmail(&cat, "a@example.org", b"To: b@example.org\r\n\r\nhi\r\n", Duration::from_secs(5)).unwrap();
        assert_eq!(std::fs::read_to_string(&got).unwrap(), "To: b@example.org\n\nhi\n");
        assert_eq!(std::fs::read_to_string(d.join("got.args")).unwrap(), "-t -i -f a@example.org\n");
        let _ = std::fs::remove_dir_all(&d);
    }
}
