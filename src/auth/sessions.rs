//! Browser sessions: a random 32-byte token (64 hex digits, the cookie) of
//! which only the SHA-256 is stored, in the `sessions` table (key: digest;
//! value: [`SessionRecord`]), with its user, creation and expiry times and a
//! CSRF secret. Sessions expire [`SESSION_TTL_SECS`] after login; an expired
//! one is refused and deleted when presented, and all expired ones are
//! purged whenever a session is created (or by [`purge_expired_sessions`]).
//! A user keeps at most [`MAX_SESSIONS_PER_USER`]: a new login ends the
//! first made. CSRF tokens are the secret masked with a fresh one-time pad per
//! page (so the page's bytes change every time: no BREACH-style recovery),
//! compared in constant time.

use super::users::{USERS, User, user_in};
use super::{AuthError, MAX_SESSIONS_PER_USER, SESSION_TTL_SECS, decode, digest, encode, hex, random, read, read_table, unhex, write};
use crate::clock::Timestamp;
use crate::store::Store;
use ctutils::CtEq as _;
use redb::{ReadableTable as _, TableDefinition};
use serde::{Deserialize, Serialize};

/// Key: SHA-256 of the session token; value: a [`SessionRecord`].
pub(super) const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions");

/// A row of `sessions`.
#[derive(Serialize, Deserialize)]
struct SessionRecord {
    email: String,
    created: i64,
    expires: i64,
    csrf: [u8; 32],
    /// Order of creation among the user's sessions (the clock may repeat a
    /// second or step back; this never does).
    seq: u64,
}

/// The CSRF secret of a session; never printed.
#[derive(Clone, PartialEq, Eq)]
struct CsrfSecret([u8; 32]);

impl std::fmt::Debug for CsrfSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfSecret(..)")
    }
}

/// A live session and its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub user: User,
    pub created: Timestamp,
    pub expires: Timestamp,
    csrf: CsrfSecret,
}

/// Starts a session for `user` (who must still exist): returns the token to
/// set as the cookie, and the session. Ends the user's first-made session beyond
/// [`MAX_SESSIONS_PER_USER`] and purges every expired session.
///
/// # Errors
/// The user no longer exists; random source or database failures.
pub fn create_session(store: &Store, user: &User, now: Timestamp) -> Result<(String, Session), AuthError> {
    let token: [u8; 32] = random()?;
    let mut rec = SessionRecord {
        email: user.email.as_str().to_owned(),
        created: now.0,
        expires: now.0.saturating_add(SESSION_TTL_SECS),
        csrf: random()?,
        seq: 0,
    };
    let user = write(store, |tx| {
        // The stored user, not the caller's copy: the role may have changed.
        let Some(user) = user_in(&tx.open_table(USERS)?, &rec.email)? else { return Err(AuthError::UnknownUser(rec.email.clone())) };
        let mut t = tx.open_table(SESSIONS)?;
        let mut doomed = Vec::new();
        let mut mine: Vec<(u64, Vec<u8>)> = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let s: SessionRecord = decode(v.value(), "session")?;
            if s.expires <= now.0 {
                doomed.push(k.value().to_vec());
            } else if s.email == rec.email {
                mine.push((s.seq, k.value().to_vec()));
            }
        }
        // First made first; make room for the new one.
        mine.sort_unstable();
        rec.seq = mine.last().map_or(0, |m| m.0 + 1);
        let excess = (mine.len() + 1).saturating_sub(MAX_SESSIONS_PER_USER);
        doomed.extend(mine.into_iter().take(excess).map(|(_, k)| k));
        for k in doomed {
            t.remove(k.as_slice())?;
        }
        t.insert(digest(&token).as_slice(), encode(&rec)?.as_slice())?;
        Ok(user)
    })?;
    let session = Session { user, created: now, expires: Timestamp(rec.expires), csrf: CsrfSecret(rec.csrf) };
    Ok((hex(&token), session))
}

/// The live session of a cookie token, or `None` (unknown, malformed,
/// expired, or its user is gone). An expired session is deleted.
///
/// # Errors
/// Database failures.
pub fn session(store: &Store, token: &str, now: Timestamp) -> Result<Option<Session>, AuthError> {
    enum Found {
        Live(Session),
        Expired,
        Nothing,
    }
    let Some(raw) = unhex::<32>(token) else { return Ok(None) };
    let key = digest(&raw);
    let found = read(store, |tx| {
        let Some(t) = read_table(tx, SESSIONS)? else { return Ok(Found::Nothing) };
        let Some(v) = t.get(key.as_slice())? else { return Ok(Found::Nothing) };
        let rec: SessionRecord = decode(v.value(), "session")?;
        if rec.expires <= now.0 {
            return Ok(Found::Expired);
        }
        let Some(users) = read_table(tx, USERS)? else { return Ok(Found::Nothing) };
        Ok(match user_in(&users, &rec.email)? {
            Some(user) => {
                Found::Live(Session { user, created: Timestamp(rec.created), expires: Timestamp(rec.expires), csrf: CsrfSecret(rec.csrf) })
            }
            None => Found::Nothing,
        })
    })?;
    match found {
        Found::Live(s) => Ok(Some(s)),
        Found::Expired => {
            write(store, |tx| Ok(tx.open_table(SESSIONS)?.remove(key.as_slice())?.is_some()))?;
            Ok(None)
        }
        Found::Nothing => Ok(None),
    }
}

/// The user of a live session, or `None` (see [`session`]).
///
/// # Errors
/// Database failures.
pub fn session_user(store: &Store, token: &str, now: Timestamp) -> Result<Option<User>, AuthError> {
    Ok(session(store, token, now)?.map(|s| s.user))
}

/// Ends a session (logout). Returns whether it existed.
///
/// # Errors
/// Database failures.
pub fn delete_session(store: &Store, token: &str) -> Result<bool, AuthError> {
    let Some(raw) = unhex::<32>(token) else { return Ok(false) };
    write(store, |tx| Ok(tx.open_table(SESSIONS)?.remove(digest(&raw).as_slice())?.is_some()))
}

/// Deletes every expired session; returns how many.
///
/// # Errors
/// Database failures.
pub fn purge_expired_sessions(store: &Store, now: Timestamp) -> Result<usize, AuthError> {
    write(store, |tx| {
        let mut t = tx.open_table(SESSIONS)?;
        let mut doomed = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            if decode::<SessionRecord>(v.value(), "session")?.expires <= now.0 {
                doomed.push(k.value().to_vec());
            }
        }
        for k in &doomed {
            t.remove(k.as_slice())?;
        }
        Ok(doomed.len())
    })
}

/// Ends every session of one user, inside the caller's transaction.
pub(super) fn remove_user_sessions(tx: &redb::WriteTransaction, email: &str) -> Result<usize, AuthError> {
    let mut t = tx.open_table(SESSIONS)?;
    let mut doomed = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        if decode::<SessionRecord>(v.value(), "session")?.email == email {
            doomed.push(k.value().to_vec());
        }
    }
    for k in &doomed {
        t.remove(k.as_slice())?;
    }
    Ok(doomed.len())
}

/// A CSRF token for a form or header of this session: 128 hex digits, a
/// fresh one-time pad followed by the secret masked with it.
///
/// # Errors
/// The random source failed.
pub fn csrf_token(session: &Session) -> Result<String, AuthError> {
    let pad: [u8; 32] = random()?;
    let mut out = [0u8; 64];
    for i in 0..32 {
        out[i] = pad[i];
        out[32 + i] = pad[i] ^ session.csrf.0[i];
    }
    Ok(hex(&out))
}

/// Whether `token` is a CSRF token of this session (constant-time in the
/// secret).
pub fn check_csrf(session: &Session, token: &str) -> bool {
    let Some(raw) = unhex::<64>(token) else { return false };
    let mut secret = [0u8; 32];
    for i in 0..32 {
        secret[i] = raw[i] ^ raw[32 + i];
    }
    secret.ct_eq(&session.csrf.0).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testutil::TempStore;
    use crate::auth::users::{Role, create_user, reset_password};

    const PW: &str = "correct horse battery";
    const T0: Timestamp = Timestamp(1_800_000_000);

    fn setup(tag: &str) -> (TempStore, User) {
        let s = TempStore::new(tag);
        let u = create_user(&s, "alice@example.org", PW, Role::Admin, T0).unwrap();
        (s, u)
    }

    fn count(s: &Store) -> usize {
        use redb::ReadableTableMetadata as _;
        read(s, |tx| Ok(read_table(tx, SESSIONS)?.map_or(Ok(0), |t| t.len())?)).unwrap().try_into().unwrap()
    }

    #[test]
    fn a_session_token_finds_its_user_until_it_expires() {
        let (s, u) = setup("expiry");
        let (tok, sess) = create_session(&s, &u, T0).unwrap();
        assert_eq!(tok.len(), 64);
        assert_eq!(sess.expires, Timestamp(T0.0 + SESSION_TTL_SECS));
        assert_eq!(session_user(&s, &tok, T0).unwrap(), Some(u.clone()));
        let last = Timestamp(T0.0 + SESSION_TTL_SECS - 1);
        assert_eq!(session_user(&s, &tok, last).unwrap(), Some(u));
        assert_eq!(count(&s), 1);
        // At expiry: refused and deleted, even if asked again earlier.
        assert_eq!(session_user(&s, &tok, sess.expires).unwrap(), None);
        assert_eq!(count(&s), 0);
        assert_eq!(session_user(&s, &tok, T0).unwrap(), None);
    }

    #[test]
    fn only_the_digest_is_stored() {
        let (s, u) = setup("digest");
        let (tok, _) = create_session(&s, &u, T0).unwrap();
        let keys: Vec<Vec<u8>> = read(&s, |tx| {
            let t = read_table(tx, SESSIONS)?.unwrap();
            Ok(t.iter()?.map(|r| r.unwrap().0.value().to_vec()).collect())
        })
        .unwrap();
        let raw = unhex::<32>(&tok).unwrap();
        assert_eq!(keys, vec![digest(&raw).to_vec()]);
        assert_ne!(keys[0], raw.to_vec());
    }

    #[test]
    fn unknown_malformed_and_deleted_tokens_find_nothing() {
        let (s, u) = setup("unknown");
        assert_eq!(session_user(&s, &"0".repeat(64), T0).unwrap(), None);
        assert_eq!(session_user(&s, "", T0).unwrap(), None);
        assert_eq!(session_user(&s, "not hex at all, but 64 characters long .........................", T0).unwrap(), None);
        let (tok, _) = create_session(&s, &u, T0).unwrap();
        let mut other = tok.clone().into_bytes();
        other[0] = if other[0] == b'0' { b'1' } else { b'0' };
        assert_eq!(session_user(&s, std::str::from_utf8(&other).unwrap(), T0).unwrap(), None);
        assert!(delete_session(&s, &tok).unwrap());
        assert!(!delete_session(&s, &tok).unwrap());
        assert_eq!(session_user(&s, &tok, T0).unwrap(), None);
    }

    #[test]
    fn a_user_keeps_at_most_n_sessions_the_oldest_goes() {
        let (s, u) = setup("bounded");
        let b = create_user(&s, "bob@example.org", "a passphrase of his own", Role::ReadOnly, T0).unwrap();
        let (bobs, _) = create_session(&s, &b, T0).unwrap();
        // All in one second, with the clock stepping back once: the first
        // made is the oldest whatever the clock says.
        let toks: Vec<String> = (0..=MAX_SESSIONS_PER_USER)
            .map(|i| create_session(&s, &u, Timestamp(if i == 0 { T0.0 + 1 } else { T0.0 })).unwrap().0)
            .collect();
        let now = Timestamp(T0.0 + 100);
        assert_eq!(session_user(&s, &toks[0], now).unwrap(), None, "the oldest was evicted");
        for t in &toks[1..] {
            assert!(session_user(&s, t, now).unwrap().is_some());
        }
        assert_eq!(session_user(&s, &bobs, now).unwrap(), Some(b), "other users' sessions are untouched");
        assert_eq!(count(&s), MAX_SESSIONS_PER_USER + 1);
    }

    #[test]
    fn expired_sessions_are_purged() {
        let (s, u) = setup("purge");
        create_session(&s, &u, T0).unwrap();
        create_session(&s, &u, Timestamp(T0.0 + 10)).unwrap();
        assert_eq!(purge_expired_sessions(&s, Timestamp(T0.0 + SESSION_TTL_SECS - 1)).unwrap(), 0);
        assert_eq!(purge_expired_sessions(&s, Timestamp(T0.0 + SESSION_TTL_SECS)).unwrap(), 1);
        assert_eq!(count(&s), 1);
        // Creating a session purges too (any user's).
        let later = Timestamp(T0.0 + SESSION_TTL_SECS + 10);
        let (tok, _) = create_session(&s, &u, later).unwrap();
        assert_eq!(count(&s), 1);
        assert!(session_user(&s, &tok, later).unwrap().is_some());
    }

    #[test]
    fn a_password_reset_ends_the_users_sessions() {
        let (s, u) = setup("reset");
        let (tok, _) = create_session(&s, &u, T0).unwrap();
        reset_password(&s, "alice@example.org", "a brand new passphrase", T0).unwrap();
        assert_eq!(session_user(&s, &tok, T0).unwrap(), None);
    }

    #[test]
    fn sessions_need_an_existing_user() {
        let (s, mut u) = setup("nouser");
        u.email = crate::auth::Email::parse("ghost@example.org").unwrap();
        assert!(matches!(create_session(&s, &u, T0), Err(AuthError::UnknownUser(_))));
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let (s, u) = setup("csrf");
        let (_, a) = create_session(&s, &u, T0).unwrap();
        let (tok_b, _) = create_session(&s, &u, T0).unwrap();
        let b = session(&s, &tok_b, T0).unwrap().unwrap();
        let t1 = csrf_token(&a).unwrap();
        let t2 = csrf_token(&a).unwrap();
        assert_eq!(t1.len(), 128);
        assert_ne!(t1, t2, "masked afresh each time");
        assert!(check_csrf(&a, &t1));
        assert!(check_csrf(&a, &t2));
        assert!(!check_csrf(&b, &t1), "another session's token");
        assert!(check_csrf(&b, &csrf_token(&b).unwrap()), "the secret survives the database");
        assert!(!check_csrf(&a, ""));
        assert!(!check_csrf(&a, &t1[..127]));
        for i in [0, 64, 127] {
            let mut bad = t1.clone().into_bytes();
            bad[i] = if bad[i] == b'0' { b'1' } else { b'0' };
            assert!(!check_csrf(&a, std::str::from_utf8(&bad).unwrap()), "flipped digit {i}");
        }
        assert!(format!("{a:?}").contains("csrf: CsrfSecret(..)"), "Debug hides the secret");
    }
}
