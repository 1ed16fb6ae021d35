//! Accounts of the web UI: users with argon2id password hashes, browser
//! sessions carrying a CSRF secret, API tokens, and the login rate limiter.
//!
//! Users, sessions and tokens live in the store's redb database, in tables of
//! their own (`users`, `sessions`, `api_tokens`); every change is one short,
//! durable write transaction, and slow work (hashing a password) happens
//! before it begins. Only SHA-256 digests of session and API tokens are
//! stored, so a copy of the database opens no session; passwords are stored
//! only as argon2id PHC strings.
//!
//! Bounds: at most [`MAX_USERS`] users (more are refused), at most
//! [`MAX_SESSIONS_PER_USER`] sessions and [`MAX_TOKENS_PER_USER`] API tokens
//! per user (the first made is evicted), expired sessions are purged whenever a
//! session is created, and the in-memory [`LoginLimiter`] has a fixed
//! capacity with a documented eviction rule.
//!
//! Time is a parameter (`now`) everywhere: nothing here reads the clock.
//! Nothing here logs or stores a password or a token in clear.

mod limiter;
mod password;
mod sessions;
mod tokens;
mod users;

pub use limiter::{Blocked, LoginLimiter};
pub use password::{PasswordProblem, check_strength};
pub use sessions::{Session, check_csrf, create_session, csrf_token, delete_session, purge_expired_sessions, session, session_user};
pub use tokens::{NewToken, create_token, token_user};
pub use users::{Email, EmailProblem, Role, User, create_user, has_any_user, list_users, reset_password, verify_login};

/// Constant-time equality of two byte strings (length is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use ctutils::CtEq as _;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

use crate::store::{Store, StoreError};

// The accounts' capacities and ages live with every other bound.
pub use crate::limits::{
    LIMITER_CAPACITY, LOGIN_MAX_FAILURES, LOGIN_WINDOW_SECS, MAX_PASSWORD_BYTES, MAX_SESSIONS_PER_USER, MAX_TOKENS_PER_USER, MAX_USERS,
    SESSION_TTL_SECS,
};

/// A password needs at least this many characters (Unicode scalar values).
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Below this many characters a password must mix at least two character
/// classes (lower case, upper case, digits, other); a long passphrase of
/// lower-case words is fine.
pub const SHORT_PASSWORD_CHARS: usize = 16;

/// A password needs at least this many different characters
/// (`aaaaaaaaaaaaaaaaaaaa` is long but guessable).
pub const MIN_DISTINCT_CHARS: usize = 5;

/// argon2id memory cost in KiB: 19 MiB, the OWASP minimum for argon2id,
/// fits a Raspberry Pi (one login at a time is serialised by the caller).
pub const ARGON2_M_COST_KIB: u32 = 19 * 1024;

/// argon2id passes over memory (OWASP: 2 with 19 MiB).
pub const ARGON2_T_COST: u32 = 2;

/// argon2id lanes (OWASP: 1; a Pi has few cores and the web pool is small).
pub const ARGON2_P_COST: u32 = 1;

/// Prefix of API tokens, so they are recognisable in configuration files and
/// by secret scanners.
pub const TOKEN_PREFIX: &str = "pl_";

/// Failures of account operations. The variants before `Store` are the
/// caller's mistakes (bad input); the rest are runtime failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("{0}")]
    BadEmail(#[from] EmailProblem),
    #[error("{0}")]
    WeakPassword(#[from] PasswordProblem),
    #[error("no user {0}")]
    UnknownUser(String),
    #[error("a user {0} already exists")]
    UserExists(String),
    #[error("the first user must be an admin")]
    FirstUserMustBeAdmin,
    #[error("there are already {MAX_USERS} users, the most one installation keeps")]
    TooManyUsers,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database: {0}")]
    Db(#[from] redb::Error),
    #[error("stored account data could not be decoded ({0}); was it written by a newer postlens?")]
    Corrupt(&'static str),
    #[error("the system's random source failed: {0}")]
    Random(getrandom::Error),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

macro_rules! db_err {
    ($($t:ty),*) => {$(impl From<$t> for AuthError { fn from(e: $t) -> Self { AuthError::Db(e.into()) } })*};
}
db_err!(redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

/// `N` bytes from the operating system's random source.
fn random<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(AuthError::Random)?;
    Ok(b)
}

/// SHA-256: the stored key of a session or API token.
fn digest(token: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(token).into()
}

/// Lower-case hexadecimal.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Exactly `2 * N` hexadecimal digits (either case) → bytes.
fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != 2 * N {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        *o = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// Stored values are one format byte, then postcard: a later postlens can
/// change the layout and still read (or clearly refuse) old rows.
const FORMAT: u8 = 1;

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, AuthError> {
    let mut out = vec![FORMAT];
    postcard::to_io(v, &mut out).map_err(|_| AuthError::Corrupt("encoding"))?;
    Ok(out)
}

fn decode<'a, T: serde::Deserialize<'a>>(b: &'a [u8], what: &'static str) -> Result<T, AuthError> {
    match b.split_first() {
        Some((&FORMAT, rest)) => postcard::from_bytes(rest).map_err(|_| AuthError::Corrupt(what)),
        _ => Err(AuthError::Corrupt(what)),
    }
}

/// Runs `f` in one read transaction.
fn read<T>(store: &Store, f: impl FnOnce(&redb::ReadTransaction) -> Result<T, AuthError>) -> Result<T, AuthError> {
    use redb::ReadableDatabase as _;
    let tx = store.db()?.begin_read()?;
    f(&tx)
}

/// Runs `f` in one durable write transaction: committed if `f` succeeds,
/// aborted (nothing written) if it fails. Callers do slow work before.
fn write<T>(store: &Store, f: impl FnOnce(&redb::WriteTransaction) -> Result<T, AuthError>) -> Result<T, AuthError> {
    let tx = store.db()?.begin_write()?;
    match f(&tx) {
        Ok(v) => {
            tx.commit()?;
            Ok(v)
        }
        Err(e) => {
            // The caller's error says more than a failed rollback would.
            let _ = tx.abort();
            Err(e)
        }
    }
}

/// Opens a table for reading; a table never written to reads as empty.
fn read_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &redb::ReadTransaction,
    def: redb::TableDefinition<K, V>,
) -> Result<Option<redb::ReadOnlyTable<K, V>>, AuthError> {
    match tx.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_bad_input() {
        let b: [u8; 4] = [0x00, 0x9f, 0xa0, 0xff];
        assert_eq!(hex(&b), "009fa0ff");
        assert_eq!(unhex::<4>("009fa0ff"), Some(b));
        assert_eq!(unhex::<4>("009FA0FF"), Some(b));
        assert_eq!(unhex::<4>("009fa0f"), None, "odd length");
        assert_eq!(unhex::<4>("009fa0ffff"), None, "too long");
        assert_eq!(unhex::<4>("009fa0fg"), None, "not hex");
        assert_eq!(unhex::<2>("é1"), None, "multi-byte characters are not digits");
    }

    #[test]
    fn random_bytes_differ() {
        let a: [u8; 32] = random().unwrap();
        let b: [u8; 32] = random().unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn stored_values_carry_a_format_byte() {
        let e = encode(&(7u32, "x")).unwrap();
        assert_eq!(e[0], FORMAT);
        assert_eq!(decode::<(u32, String)>(&e, "t").unwrap(), (7, "x".to_owned()));
        let mut newer = e.clone();
        newer[0] = FORMAT + 1;
        assert!(matches!(decode::<(u32, String)>(&newer, "t"), Err(AuthError::Corrupt("t"))));
        assert!(decode::<(u32, String)>(&[], "t").is_err());
    }

    #[test]
    fn digest_is_sha256() {
        // FIPS 180-2 test vector.
        assert_eq!(hex(&digest(b"abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}

/// Test helpers shared by the submodules' tests.
#[cfg(test)]
pub(crate) mod testutil {
    use crate::store::Store;

    /// A fresh store in a temporary directory, removed on drop.
    pub(crate) struct TempStore {
        pub(crate) store: Store,
        dir: std::path::PathBuf,
    }

    impl TempStore {
        pub(crate) fn new(tag: &str) -> TempStore {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("postlens-auth-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let store = Store::open(&dir).expect("open a temporary store");
            TempStore { store, dir }
        }
    }

    impl std::ops::Deref for TempStore {
        type Target = Store;
        fn deref(&self) -> &Store {
            &self.store
        }
    }

    impl Drop for TempStore {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
