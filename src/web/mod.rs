//! The web UI and API on `--listen`: a fixed pool of `HTTP_WORKERS`
//! threads takes requests from `tiny_http`, decodes each once (`req`),
//! authenticates it and routes it to a handler (`pages`, `api`), which
//! reads through `store` readers (redb read transactions: never blocking
//! ingestion) and renders a minijinja template or JSON.
//!
//! Everything is server-rendered and works without JS; every page sends
//! the security headers (CSP without inline script or style, no framing,
//! no sniffing, same-origin referrers). All links are relative and every
//! HTML page lives at the top level, so the UI works under any path
//! prefix behind a reverse proxy. Templates, styles and translations are
//! embedded in the binary, compressed (`assets`); static files and the
//! `OpenAPI` document go out gzip-compressed to clients that accept it.

mod api;
mod assets;
pub(crate) mod chart;
mod dash;
pub(crate) mod domains;
mod health_page;
mod i18n;
mod insights;
pub use insights::notification;
mod metrics;
mod pages;
mod protect_page;
mod req;
mod settings_page;
mod telemetry_page;

use crate::auth::{self, LoginLimiter, Session, User};
use crate::clock::Timestamp;
use crate::control::{LiveStatus, OverlayRequests};
use crate::store::Store;
use req::{Method, Req, ReqError};
use std::sync::{Arc, Mutex};

/// UI languages (translation catalogs in `web/i18n`).
pub const LANGUAGES: &[&str] = &["en", "de"];

/// Names of the cookies the UI sets.
const SESSION_COOKIE: &str = "pl_session";
const PRE_CSRF_COOKIE: &str = "pl_csrf";

/// Applies saved settings that the running daemon acts on at once (the
/// peer-network choice), on a thread of their own: stopping a client may
/// wait for its exchange to end.
pub(crate) fn settings_saved(ctx: &Ctx, s: &crate::settings::Settings) {
    if let Some(peer) = &ctx.cfg.peer {
        let (peer, choice) = (peer.clone(), s.peer_network);
        let own: Vec<std::net::IpAddr> = s.public_ip.iter().filter_map(|i| i.parse().ok()).collect();
        let _ = std::thread::Builder::new().name("postlens-peer-apply".into()).spawn(move || peer.apply(choice, &own));
    }
}

/// One health-check run from the daemon's schedule: results stored, new
/// failures notified.
pub fn run_checks(store: &Store, notifier: Option<&crate::notify::Notifier>) {
    health_page::run_and_notify(store, notifier);
}

/// What the server needs besides the store.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// Trust `X-Forwarded-For`/`-Proto` from a loopback peer (the default;
    /// `--no-reverse-proxy` turns it off).
    pub trust_proxy: bool,
    /// Zone of `YYYY-MM-DD` dates and of the charts' days.
    pub tz: jiff::tz::TimeZone,
    /// The admin's own domain mapping, merged over the built-in one.
    pub domain_map: domains::DomainMap,
    /// The daemon's local protection, for the blocklist page.
    pub protect: Option<crate::protect::Shared>,
    /// The daemon's peer-network state, for the telemetry page.
    pub peer: Option<Arc<crate::peer::service::PeerService>>,
}

pub(crate) struct Ctx {
    pub store: Arc<Store>,
    pub live: LiveStatus,
    pub overlays: Option<OverlayRequests>,
    pub cfg: WebConfig,
    pub env: minijinja::Environment<'static>,
    pub login_limiter: Mutex<LoginLimiter>,
    pub public_limiter: Mutex<pages::PublicLimiter>,
    /// The daemon's notification sender (status, tests, new channels).
    pub notifier: Option<Arc<crate::notify::Notifier>>,
    /// The dashboard's top lists derived from settled hours (see `dash`).
    pub dash: dash::DashCache,
    /// The insights as last listed and the store's insights generation
    /// then (the dashboard's panel reads them on every request).
    pub insights: Mutex<(u64, Option<insights::Listed>)>,
}

/// A response: status, content type, body and extra headers.
pub(crate) struct Resp {
    pub status: u16,
    pub ctype: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
    /// Sent instead of `body`, chunked, as it is read (downloads that must
    /// not be held in memory whole).
    pub stream: Option<Box<dyn std::io::Read + Send>>,
}

impl Resp {
    pub fn new(status: u16, ctype: &'static str, body: impl Into<Vec<u8>>) -> Resp {
        Resp { status, ctype, body: body.into(), headers: Vec::new(), stream: None }
    }
    pub fn text(status: u16, body: impl Into<String>) -> Resp {
        Resp::new(status, "text/plain; charset=utf-8", body.into())
    }
    pub fn json(status: u16, v: &impl serde::Serialize) -> Resp {
        let mut body = serde_json::to_vec_pretty(v).unwrap_or_default();
        body.push(b'\n');
        Resp::new(status, "application/json", body)
    }
    /// A redirect to a relative location (works under any path prefix).
    pub fn redirect(to: &str) -> Resp {
        Resp::new(303, "text/plain; charset=utf-8", Vec::new()).with("Location", to.to_owned())
    }
    /// Sends `r` as the body, chunked, as it is read.
    pub fn streaming(mut self, r: impl std::io::Read + Send + 'static) -> Resp {
        self.stream = Some(Box::new(r));
        self
    }
    pub fn with(mut self, name: &'static str, value: String) -> Resp {
        self.headers.push((name, value));
        self
    }
}

/// Who is asking: a signed-in user (with the session, for CSRF) or an API
/// token's user.
pub(crate) struct Who {
    pub user: User,
    pub session: Option<Session>,
}

impl Who {
    pub fn is_admin(&self) -> bool {
        self.user.role == auth::Role::Admin
    }
}

/// Starts the server on `addr`.
///
/// The listening socket with `TCP_NODELAY`, which Linux passes on to the
/// connections it accepts: `tiny_http` writes a response's head and body
/// separately, and with Nagle's algorithm the body of a kept-alive
/// connection waited for the client's delayed ACK of the head (~40 ms per
/// page). Made through tokio's socket builder (no unsafe code here); `None`
/// outside a runtime.
fn listener(addr: std::net::SocketAddr) -> Option<std::io::Result<std::net::TcpListener>> {
    tokio::runtime::Handle::try_current().ok()?;
    let make = || -> std::io::Result<std::net::TcpListener> {
        let sock = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        sock.set_reuseaddr(true)?;
        sock.set_nodelay(true)?;
        sock.bind(addr)?;
        let l = sock.listen(crate::limits::HTTP_BACKLOG)?.into_std()?;
        l.set_nonblocking(false)?;
        Ok(l)
    };
    Some(make())
}

/// # Errors
/// The address cannot be bound.
pub fn serve(
    addr: std::net::SocketAddr,
    store: &Arc<Store>,
    live: &LiveStatus,
    overlays: Option<OverlayRequests>,
    notifier: Option<Arc<crate::notify::Notifier>>,
    cfg: WebConfig,
) -> std::io::Result<Arc<tiny_http::Server>> {
    let server = Arc::new(
        match listener(addr) {
            Some(l) => tiny_http::Server::from_listener(l?, None),
            None => tiny_http::Server::http(addr),
        }
        .map_err(std::io::Error::other)?,
    );
    let ctx = Arc::new(Ctx {
        store: store.clone(),
        live: live.clone(),
        overlays,
        cfg,
        env: pages::environment(),
        login_limiter: Mutex::new(LoginLimiter::default()),
        public_limiter: Mutex::new(pages::PublicLimiter::default()),
        notifier,
        dash: dash::DashCache::default(),
        insights: Mutex::new((0, None)),
    });
    for i in 0..crate::limits::HTTP_WORKERS {
        let (server, ctx) = (server.clone(), ctx.clone());
        std::thread::Builder::new().name(format!("postlens-http-{i}")).spawn(move || {
            for mut r in server.incoming_requests() {
                let resp = match Req::read(&mut r, ctx.cfg.trust_proxy) {
                    Ok(req) => handle(&ctx, &req),
                    Err(ReqError::TooLarge) => Resp::text(413, "request body too large\n"),
                    Err(ReqError::BadBody) => Resp::text(400, "request body could not be read\n"),
                };
                respond(r, resp);
            }
        })?;
    }
    Ok(server)
}

fn header(name: &str, value: &str) -> Option<tiny_http::Header> {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn respond(r: tiny_http::Request, resp: Resp) {
    let (data, len): (Box<dyn std::io::Read + Send>, Option<usize>) = if let Some(stream) = resp.stream {
        (stream, None)
    } else {
        let n = resp.body.len();
        (Box::new(std::io::Cursor::new(resp.body)), Some(n))
    };
    // With its length known a body goes out whole, not chunked (tiny_http
    // chunks anything over 32 KiB unless told otherwise).
    let mut out = tiny_http::Response::new(resp.status.into(), Vec::new(), data, len, None).with_chunked_threshold(usize::MAX);
    let fixed = [
        ("Content-Type", resp.ctype),
        (
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("Cache-Control", "no-store"),
    ];
    for (n, v) in fixed {
        // A handler's own value (static files' `Cache-Control`) replaces
        // the default: two contradicting headers would leave the choice to
        // the client.
        if resp.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n)) {
            continue;
        }
        if let Some(h) = header(n, v) {
            out.add_header(h);
        }
    }
    for (n, v) in &resp.headers {
        if let Some(h) = header(n, v) {
            out.add_header(h);
        }
    }
    let _ = r.respond(out);
}

/// Routes one request.
fn handle(ctx: &Ctx, req: &Req) -> Resp {
    let now = crate::clock::now();
    let path = req.path.as_str();
    // Open routes.
    match (req.method, path) {
        (Method::Get | Method::Head, "/healthz") => return Resp::text(200, "ok\n"),
        (Method::Get, "/metrics") => return api::metrics(ctx, req),
        (Method::Get, p) if p.starts_with("/static/") => return pages::static_file(&p["/static/".len()..], req.gzip),
        _ => {}
    }
    if path.starts_with("/api/") {
        return api::route(ctx, req, now);
    }
    let lang = pages::language(ctx);
    match (req.method, path) {
        (Method::Get | Method::Post, "/setup") => return pages::setup(ctx, req, &lang, now),
        (Method::Get | Method::Post, "/login") => return pages::login(ctx, req, &lang, now),
        (Method::Get | Method::Post, "/public") => return pages::public(ctx, req, &lang, now),
        (Method::Post, "/public/escalate") => return pages::escalate(ctx, req, &lang, now),
        _ => {}
    }
    // First run: nothing but the setup page until an admin exists.
    match auth::has_any_user(&ctx.store) {
        Ok(false) => return Resp::redirect(&pages::rel(path, "setup")),
        Ok(true) => {}
        Err(e) => return pages::error(ctx, &lang, 500, &e.to_string()),
    }
    let Some(who) = session_of(ctx, req, now) else {
        return Resp::redirect(&pages::rel(path, "login"));
    };
    // Every form post carries the session's CSRF token.
    if req.method == Method::Post {
        let ok = who.session.as_ref().is_some_and(|s| req.f("csrf").is_some_and(|t| auth::check_csrf(s, t)));
        if !ok {
            return pages::error(ctx, &lang, 403, &i18n::t(&lang, "error.csrf"));
        }
    }
    match (req.method, path) {
        (Method::Get, "/") => pages::dashboard(ctx, req, &who, &lang, now),
        (Method::Get, "/mailbox") => pages::mailbox(ctx, req, &who, &lang, now),
        (Method::Get, "/detective") => pages::detective(ctx, req, &who, &lang, now),
        (Method::Get, "/detective.csv") => pages::detective_csv(ctx, req, now),
        (Method::Get, "/message") => pages::message(ctx, req, &who, &lang, now),
        (Method::Get, "/logs") => pages::logs(ctx, req, &who, &lang, now),
        (Method::Get, "/logs.txt") => pages::logs_download(ctx, req, now),
        (Method::Get | Method::Post, "/settings") => settings_page::settings(ctx, req, &who, &lang),
        (Method::Post, "/settings/notify") => settings_page::notify(ctx, req, &who, &lang, now),
        (Method::Get, "/protection") => protect_page::list(ctx, req, &who, &lang, now),
        (Method::Get, "/telemetry") => telemetry_page::show(ctx, req, &who, &lang),
        (Method::Get, "/health") => health_page::show(ctx, req, &who, &lang),
        (Method::Post, "/health") => health_page::action(ctx, req, &who, &lang, now),
        (Method::Post, "/protection") => protect_page::action(ctx, req, &who, &lang, now),
        (Method::Get, "/insights") => insights::list_page(ctx, req, &who, &lang, now),
        (Method::Post, "/insights/action") => insights::action(ctx, req, &who, &lang, now),
        (Method::Post, "/logout") => pages::logout(ctx, req),
        (Method::Get | Method::Post, _) => pages::error(ctx, &lang, 404, &i18n::t(&lang, "error.not_found")),
        _ => Resp::text(405, "method not allowed\n"),
    }
}

/// The signed-in user of `req`'s session cookie.
fn session_of(ctx: &Ctx, req: &Req, now: Timestamp) -> Option<Who> {
    let token = req.cookie(SESSION_COOKIE)?;
    let s = auth::session(&ctx.store, token, now).ok()??;
    Some(Who { user: s.user.clone(), session: Some(s) })
}

/// The user of a session cookie or an `Authorization: Bearer` API token.
fn api_user(ctx: &Ctx, req: &Req, now: Timestamp) -> Option<Who> {
    if let Some(t) = &req.bearer {
        return auth::token_user(&ctx.store, t).ok()?.map(|user| Who { user, session: None });
    }
    session_of(ctx, req, now)
}

/// `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Secure` over TLS.
fn cookie(req: &Req, name: &str, value: &str, max_age: i64) -> String {
    let secure = if req.https { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}
