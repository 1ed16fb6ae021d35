//! Users: validated, lower-cased e-mail addresses, a role, and an argon2id
//! password hash, in the `users` table (key: the address; value: a
//! [`UserRecord`]). The first user is an admin; at most [`MAX_USERS`].
//! Logins for unknown addresses cost one hash too, so their timing does not
//! tell which addresses have accounts.

use super::password::{self, check_strength};
use super::{AuthError, MAX_PASSWORD_BYTES, MAX_USERS, decode, encode, read, read_table, write};
use crate::clock::Timestamp;
use crate::store::Store;
use redb::{ReadableTable as _, ReadableTableMetadata as _, TableDefinition};
use serde::{Deserialize, Serialize};

/// Key: the lower-cased address; value: a [`UserRecord`].
pub(super) const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");

/// Longest address (RFC 5321: 64 + 1 + 255, limited in practice to 254).
const MAX_EMAIL: usize = 254;
const MAX_LOCAL: usize = 64;
const MAX_LABEL: usize = 63;

/// An e-mail address, validated and lower-cased: the identity of a user.
///
/// Invariant: ASCII, exactly one `@`, a dot-atom local part of 1–64
/// characters, a domain of two or more LDH labels; at most 254 bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Email(String);

/// Why a string is not an address we accept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmailProblem {
    #[error("'{0}' is not an e-mail address like admin@example.org")]
    NotAnAddress(String),
    #[error("'{0}' is too long for an e-mail address")]
    TooLong(String),
    #[error("'{0}': the part before @ may hold letters, digits, dots (not two in a row, not first or last) and !#$%&'*+-/=?^_`{{|}}~")]
    BadLocalPart(String),
    #[error("'{0}': the domain must be a name like example.org (letters, digits, hyphens, dots)")]
    BadDomain(String),
}

impl Email {
    /// Validates and lower-cases an address (surrounding spaces are
    /// ignored). Non-ASCII domains are accepted in their `xn--` form.
    ///
    /// # Errors
    /// What is wrong with it.
    pub fn parse(s: &str) -> Result<Email, EmailProblem> {
        let s = s.trim();
        if s.len() > MAX_EMAIL {
            let cut: String = s.chars().take(40).collect();
            return Err(EmailProblem::TooLong(format!("{cut}…")));
        }
        let lower = s.to_ascii_lowercase();
        let Some((local, domain)) = lower.split_once('@') else { return Err(EmailProblem::NotAnAddress(s.to_owned())) };
        if local.is_empty() || domain.is_empty() || domain.contains('@') {
            return Err(EmailProblem::NotAnAddress(s.to_owned()));
        }
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
        if local.len() > MAX_LOCAL || local.split('.').any(|atom| atom.is_empty() || !atom.chars().all(atext)) {
            return Err(EmailProblem::BadLocalPart(s.to_owned()));
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= MAX_LABEL
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if domain.split('.').count() < 2 || !domain.split('.').all(label_ok) {
            return Err(EmailProblem::BadDomain(s.to_owned()));
        }
        Ok(Email(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@`.
    pub fn local_part(&self) -> &str {
        self.0.split_once('@').map_or(self.0.as_str(), |(l, _)| l)
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a user may do in the web UI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Everything, including settings and accounts.
    Admin,
    /// Look, never change.
    ReadOnly,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::ReadOnly => "read-only",
        }
    }
}

/// A user as the rest of postlens sees it (never with the password hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub email: Email,
    pub role: Role,
    pub created: Timestamp,
}

/// A row of `users`.
#[derive(Serialize, Deserialize)]
struct UserRecord {
    role: Role,
    created: i64,
    password_changed: i64,
    /// argon2id PHC string.
    hash: String,
}

impl UserRecord {
    fn user(&self, email: Email) -> User {
        User { email, role: self.role, created: Timestamp(self.created) }
    }
}

fn get_record(t: &impl redb::ReadableTable<&'static str, &'static [u8]>, email: &Email) -> Result<Option<UserRecord>, AuthError> {
    t.get(email.as_str())?.map(|v| decode(v.value(), "user")).transpose()
}

/// The user with this (already validated) address, inside a transaction.
pub(super) fn user_in(t: &impl redb::ReadableTable<&'static str, &'static [u8]>, email: &str) -> Result<Option<User>, AuthError> {
    let Ok(email) = Email::parse(email) else { return Ok(None) };
    Ok(get_record(t, &email)?.map(|r| r.user(email)))
}

fn lookup(store: &Store, email: &Email) -> Result<Option<UserRecord>, AuthError> {
    read(store, |tx| match read_table(tx, USERS)? {
        Some(t) => get_record(&t, email),
        None => Ok(None),
    })
}

/// Adds a user. The first user must be an [`Role::Admin`].
///
/// # Errors
/// A bad address or weak password (checked before the database is
/// touched), an existing user, a read-only first user, [`MAX_USERS`]
/// reached; database failures.
pub fn create_user(store: &Store, email: &str, password: &str, role: Role, now: Timestamp) -> Result<User, AuthError> {
    let email = Email::parse(email)?;
    check_strength(password, &email)?;
    // Fail fast, before the slow hash; checked again in the transaction.
    if lookup(store, &email)?.is_some() {
        return Err(AuthError::UserExists(email.0));
    }
    if role == Role::ReadOnly && !has_any_user(store)? {
        return Err(AuthError::FirstUserMustBeAdmin);
    }
    let rec = UserRecord { role, created: now.0, password_changed: now.0, hash: password::hash(password)? };
    let value = encode(&rec)?;
    write(store, |tx| {
        let mut t = tx.open_table(USERS)?;
        if t.get(email.as_str())?.is_some() {
            return Err(AuthError::UserExists(email.0.clone()));
        }
        let n = t.len()?;
        if n == 0 && role == Role::ReadOnly {
            return Err(AuthError::FirstUserMustBeAdmin);
        }
        if n >= MAX_USERS as u64 {
            return Err(AuthError::TooManyUsers);
        }
        t.insert(email.as_str(), value.as_slice())?;
        Ok(())
    })?;
    Ok(rec.user(email))
}

/// Sets a new password and ends all of the user's browser sessions (API
/// tokens stay valid: they are separate credentials).
///
/// # Errors
/// A bad address or weak password, no such user; database failures.
pub fn reset_password(store: &Store, email: &str, password: &str, now: Timestamp) -> Result<User, AuthError> {
    let email = Email::parse(email)?;
    check_strength(password, &email)?;
    if lookup(store, &email)?.is_none() {
        return Err(AuthError::UnknownUser(email.0));
    }
    let hash = password::hash(password)?;
    write(store, |tx| {
        let mut t = tx.open_table(USERS)?;
        let Some(mut rec) = get_record(&t, &email)? else { return Err(AuthError::UnknownUser(email.0.clone())) };
        rec.hash = hash;
        rec.password_changed = now.0;
        t.insert(email.as_str(), encode(&rec)?.as_slice())?;
        super::sessions::remove_user_sessions(tx, email.as_str())?;
        Ok(rec.user(email.clone()))
    })
}

/// The user whose address and password these are, or `None`. Takes the time
/// of one argon2 verification whether or not the address has an account
/// (or is an address at all).
///
/// # Errors
/// Database failures only; a wrong password is `Ok(None)`.
pub fn verify_login(store: &Store, email: &str, password: &str) -> Result<Option<User>, AuthError> {
    // An over-long password is refused, at the cost of a normal one.
    let (password, too_long) = if password.len() > MAX_PASSWORD_BYTES { ("", true) } else { (password, false) };
    let Ok(email) = Email::parse(email) else {
        password::verify_dummy(password);
        return Ok(None);
    };
    if let Some(rec) = lookup(store, &email)? {
        let ok = password::verify(password, &rec.hash) && !too_long;
        Ok(ok.then(|| rec.user(email)))
    } else {
        password::verify_dummy(password);
        Ok(None)
    }
}

/// All users, by address.
///
/// # Errors
/// Database failures.
pub fn list_users(store: &Store) -> Result<Vec<User>, AuthError> {
    read(store, |tx| {
        let Some(t) = read_table(tx, USERS)? else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let rec: UserRecord = decode(v.value(), "user")?;
            let email = Email::parse(k.value()).map_err(|_| AuthError::Corrupt("user address"))?;
            out.push(rec.user(email));
        }
        Ok(out)
    })
}

/// Whether any user exists (the web UI offers first-time setup if not).
///
/// # Errors
/// Database failures.
pub fn has_any_user(store: &Store) -> Result<bool, AuthError> {
    read(store, |tx| Ok(read_table(tx, USERS)?.map(|t| t.is_empty()).transpose()?.is_some_and(|empty| !empty)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testutil::TempStore;

    const PW: &str = "correct horse battery";

    #[test]
    fn addresses_are_validated_and_lower_cased() {
        assert_eq!(Email::parse(" Alice.Smith+ops@Example.ORG ").unwrap().as_str(), "alice.smith+ops@example.org");
        assert_eq!(Email::parse("a@b.co").unwrap().local_part(), "a");
        for bad in ["", "alice", "@example.org", "alice@", "a@b@example.org", "alice@localhost"] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(matches!(Email::parse("al ice@example.org"), Err(EmailProblem::BadLocalPart(_))));
        assert!(matches!(Email::parse(".alice@example.org"), Err(EmailProblem::BadLocalPart(_))));
        assert!(matches!(Email::parse("al..ice@example.org"), Err(EmailProblem::BadLocalPart(_))));
        assert!(matches!(Email::parse("alicé@example.org"), Err(EmailProblem::BadLocalPart(_))));
        assert!(matches!(Email::parse("alice@-example.org"), Err(EmailProblem::BadDomain(_))));
        assert!(matches!(Email::parse("alice@example..org"), Err(EmailProblem::BadDomain(_))));
        assert!(matches!(Email::parse("alice@exa_mple.org"), Err(EmailProblem::BadDomain(_))));
        assert!(matches!(Email::parse(&format!("{}@example.org", "a".repeat(65))), Err(EmailProblem::BadLocalPart(_))));
        assert!(matches!(Email::parse(&format!("alice@{}.org", "a".repeat(64))), Err(EmailProblem::BadDomain(_))));
        assert!(matches!(Email::parse(&format!("alice@{}.org", "a.".repeat(130))), Err(EmailProblem::TooLong(_))));
        assert!(Email::parse("alice@xn--bcher-kva.example").is_ok());
        assert!(EmailProblem::NotAnAddress("x".into()).to_string().contains("admin@example.org"));
    }

    #[test]
    fn first_user_is_admin_and_read_only_users_follow() {
        let s = TempStore::new("first");
        assert!(!has_any_user(&s).unwrap());
        assert!(matches!(create_user(&s, "ro@example.org", PW, Role::ReadOnly, Timestamp(5)), Err(AuthError::FirstUserMustBeAdmin)));
        assert!(!has_any_user(&s).unwrap());
        let a = create_user(&s, "Admin@Example.org", PW, Role::Admin, Timestamp(10)).unwrap();
        assert_eq!((a.email.as_str(), a.role, a.created), ("admin@example.org", Role::Admin, Timestamp(10)));
        assert!(has_any_user(&s).unwrap());
        let r = create_user(&s, "ro@example.org", "another good one", Role::ReadOnly, Timestamp(11)).unwrap();
        assert_eq!(r.role, Role::ReadOnly);
        assert_eq!(list_users(&s).unwrap(), vec![a, r]);
    }

    #[test]
    fn duplicates_bad_addresses_and_weak_passwords_are_refused_before_writing() {
        let s = TempStore::new("dup");
        create_user(&s, "alice@example.org", PW, Role::Admin, Timestamp(1)).unwrap();
        assert!(
            matches!(create_user(&s, "ALICE@example.org", PW, Role::Admin, Timestamp(2)), Err(AuthError::UserExists(e)) if e == "alice@example.org")
        );
        assert!(matches!(create_user(&s, "bob", PW, Role::Admin, Timestamp(2)), Err(AuthError::BadEmail(_))));
        assert!(matches!(
            create_user(&s, "bob@example.org", "short", Role::Admin, Timestamp(2)),
            Err(AuthError::WeakPassword(password::PasswordProblem::TooShort { chars: 5 }))
        ));
        assert_eq!(list_users(&s).unwrap().len(), 1);
    }

    #[test]
    fn login_checks_the_password() {
        let s = TempStore::new("login");
        assert_eq!(verify_login(&s, "alice@example.org", PW).unwrap(), None, "no users table yet");
        let a = create_user(&s, "alice@example.org", PW, Role::Admin, Timestamp(1)).unwrap();
        assert_eq!(verify_login(&s, "alice@example.org", PW).unwrap(), Some(a.clone()));
        assert_eq!(verify_login(&s, " Alice@EXAMPLE.org", PW).unwrap(), Some(a), "addresses in any case");
        assert_eq!(verify_login(&s, "alice@example.org", "correct horse batterY").unwrap(), None);
        assert_eq!(verify_login(&s, "alice@example.org", "").unwrap(), None);
        assert_eq!(verify_login(&s, "bob@example.org", PW).unwrap(), None);
        assert_eq!(verify_login(&s, "not an address", PW).unwrap(), None);
        let huge = format!("{PW}{}", " ".repeat(MAX_PASSWORD_BYTES));
        assert_eq!(verify_login(&s, "alice@example.org", &huge).unwrap(), None);
    }

    #[test]
    fn unknown_addresses_cost_a_hash_too() {
        let s = TempStore::new("timing");
        create_user(&s, "alice@example.org", PW, Role::Admin, Timestamp(1)).unwrap();
        // This thread's CPU time (ns), not the wall clock: other work on a
        // busy machine does not count. The fastest of three.
        let cpu = || -> u64 {
            let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
            s.split_whitespace().next().unwrap().parse().unwrap()
        };
        let time = |email: &str| {
            (0..3)
                .map(|_| {
                    let t = cpu();
                    assert_eq!(verify_login(&s, email, "wrong password!").unwrap(), None);
                    std::time::Duration::from_nanos(cpu() - t)
                })
                .min()
                .unwrap()
        };
        let known = time("alice@example.org");
        let unknown = time("nobody@example.org");
        let malformed = time("nobody");
        // Without the dummy hash an unknown address answers in microseconds,
        // thousands of times faster; with it, the times are alike.
        assert!(unknown * 3 > known, "known {known:?}, unknown {unknown:?}");
        assert!(malformed * 3 > known, "known {known:?}, malformed {malformed:?}");
    }

    #[test]
    fn reset_password_replaces_the_old_one() {
        let s = TempStore::new("reset");
        assert!(matches!(reset_password(&s, "alice@example.org", PW, Timestamp(1)), Err(AuthError::UnknownUser(_))));
        create_user(&s, "alice@example.org", PW, Role::Admin, Timestamp(1)).unwrap();
        assert!(matches!(reset_password(&s, "alice@example.org", "alice-2026!", Timestamp(2)), Err(AuthError::WeakPassword(_))));
        let u = reset_password(&s, "Alice@example.org", "a new good passphrase", Timestamp(2)).unwrap();
        assert_eq!((u.role, u.created), (Role::Admin, Timestamp(1)));
        assert_eq!(verify_login(&s, "alice@example.org", PW).unwrap(), None);
        assert!(verify_login(&s, "alice@example.org", "a new good passphrase").unwrap().is_some());
    }

    #[test]
    fn users_are_bounded() {
        let s = TempStore::new("bound");
        // Fill the table directly: hashing MAX_USERS passwords is slow.
        let hash = password::hash(PW).unwrap();
        write(&s, |tx| {
            let mut t = tx.open_table(USERS)?;
            for i in 0..MAX_USERS {
                let rec = UserRecord { role: Role::Admin, created: 1, password_changed: 1, hash: hash.clone() };
                t.insert(format!("u{i}@example.org").as_str(), encode(&rec)?.as_slice())?;
            }
            Ok(())
        })
        .unwrap();
        assert!(matches!(create_user(&s, "one-more@example.org", PW, Role::ReadOnly, Timestamp(2)), Err(AuthError::TooManyUsers)));
        assert_eq!(list_users(&s).unwrap().len(), MAX_USERS);
    }

    #[test]
    fn users_survive_reopening_the_store() {
        let dir = std::env::temp_dir().join(format!("postlens-auth-reopen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let s = Store::open(&dir).unwrap();
            create_user(&s, "alice@example.org", PW, Role::Admin, Timestamp(1)).unwrap();
        }
        let s = Store::open(&dir).unwrap();
        assert!(verify_login(&s, "alice@example.org", PW).unwrap().is_some());
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
