//! API tokens for `Authorization: Bearer` on `/api/v1`: `pl_` followed by 64
//! hex digits (32 random bytes), printed once by `postlens user token`. Only
//! the SHA-256 of the random bytes is stored, in the `api_tokens` table
//! (key: digest; value: [`TokenRecord`]). A user keeps at most
//! [`MAX_TOKENS_PER_USER`]; a new one beyond that revokes the first made, and
//! [`NewToken::revoked`] says so. Tokens do not expire and survive password
//! resets (they are separate credentials).

use super::users::{Email, USERS, User, user_in};
use super::{AuthError, MAX_TOKENS_PER_USER, TOKEN_PREFIX, decode, digest, encode, hex, random, read, read_table, unhex, write};
use crate::clock::Timestamp;
use crate::store::Store;
use redb::{ReadableTable as _, TableDefinition};
use serde::{Deserialize, Serialize};

/// Key: SHA-256 of the token's 32 random bytes; value: a [`TokenRecord`].
pub(super) const API_TOKENS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("api_tokens");

/// A row of `api_tokens`.
#[derive(Serialize, Deserialize)]
struct TokenRecord {
    email: String,
    created: i64,
    /// Order of creation among the user's tokens (the clock may repeat a
    /// second or step back; this never does).
    seq: u64,
}

/// A token just made.
#[derive(Debug)]
pub struct NewToken {
    /// The token itself: shown once, never stored.
    pub token: String,
    pub user: User,
    /// When the token revoked to stay within [`MAX_TOKENS_PER_USER`] was
    /// made, if one was.
    pub revoked: Option<Timestamp>,
}

/// Makes a new API token for the user `email`.
///
/// # Errors
/// A bad address, no such user; random source or database failures.
pub fn create_token(store: &Store, email: &str, now: Timestamp) -> Result<NewToken, AuthError> {
    let email = Email::parse(email)?;
    let raw: [u8; 32] = random()?;
    let (user, revoked) = write(store, |tx| {
        let Some(user) = user_in(&tx.open_table(USERS)?, email.as_str())? else {
            return Err(AuthError::UnknownUser(email.as_str().to_owned()));
        };
        let mut t = tx.open_table(API_TOKENS)?;
        let mut mine: Vec<(u64, i64, Vec<u8>)> = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let r: TokenRecord = decode(v.value(), "API token")?;
            if r.email == email.as_str() {
                mine.push((r.seq, r.created, k.value().to_vec()));
            }
        }
        mine.sort_unstable();
        let seq = mine.last().map_or(0, |m| m.0 + 1);
        let excess = (mine.len() + 1).saturating_sub(MAX_TOKENS_PER_USER);
        let mut revoked = None;
        for (_, created, k) in mine.into_iter().take(excess) {
            t.remove(k.as_slice())?;
            revoked = Some(Timestamp(created));
        }
        let value = encode(&TokenRecord { email: email.as_str().to_owned(), created: now.0, seq })?;
        t.insert(digest(&raw).as_slice(), value.as_slice())?;
        Ok((user, revoked))
    })?;
    Ok(NewToken { token: format!("{TOKEN_PREFIX}{}", hex(&raw)), user, revoked })
}

/// The user of an API token, or `None` (unknown, malformed, or its user is
/// gone).
///
/// # Errors
/// Database failures.
pub fn token_user(store: &Store, token: &str) -> Result<Option<User>, AuthError> {
    let Some(raw) = token.strip_prefix(TOKEN_PREFIX).and_then(unhex::<32>) else { return Ok(None) };
    read(store, |tx| {
        let Some(t) = read_table(tx, API_TOKENS)? else { return Ok(None) };
        let Some(v) = t.get(digest(&raw).as_slice())? else { return Ok(None) };
        let rec: TokenRecord = decode(v.value(), "API token")?;
        let Some(users) = read_table(tx, USERS)? else { return Ok(None) };
        user_in(&users, &rec.email)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testutil::TempStore;
    use crate::auth::users::{Role, create_user, reset_password};

    const PW: &str = "correct horse battery";

    #[test]
    fn a_token_finds_its_user() {
        let s = TempStore::new("token");
        let a = create_user(&s, "alice@example.org", PW, Role::Admin, Timestamp(1)).unwrap();
        let b = create_user(&s, "bob@example.org", "a passphrase of his own", Role::ReadOnly, Timestamp(1)).unwrap();
        let ta = create_token(&s, "Alice@example.org", Timestamp(2)).unwrap();
        let tb = create_token(&s, "bob@example.org", Timestamp(2)).unwrap();
        assert!(ta.token.starts_with("pl_") && ta.token.len() == 3 + 64, "{}", ta.token);
        assert_eq!((&ta.user, ta.revoked), (&a, None));
        assert_eq!(token_user(&s, &ta.token).unwrap(), Some(a.clone()));
        assert_eq!(token_user(&s, &tb.token).unwrap(), Some(b));
        // Several per user.
        let ta2 = create_token(&s, "alice@example.org", Timestamp(3)).unwrap();
        assert_ne!(ta.token, ta2.token);
        assert_eq!(token_user(&s, &ta.token).unwrap(), Some(a.clone()));
        assert_eq!(token_user(&s, &ta2.token).unwrap(), Some(a.clone()));
        // A password reset leaves API tokens alone.
        reset_password(&s, "alice@example.org", "a brand new passphrase", Timestamp(4)).unwrap();
        assert_eq!(token_user(&s, &ta.token).unwrap(), Some(a));
    }

    #[test]
    fn malformed_and_unknown_tokens_find_nothing() {
        let s = TempStore::new("badtoken");
        assert_eq!(token_user(&s, "pl_0000").unwrap(), None, "no table yet");
        create_user(&s, "alice@example.org", PW, Role::Admin, Timestamp(1)).unwrap();
        let t = create_token(&s, "alice@example.org", Timestamp(2)).unwrap().token;
        assert_eq!(token_user(&s, &t[3..]).unwrap(), None, "the prefix is part of the token");
        assert_eq!(token_user(&s, &format!("xx_{}", &t[3..])).unwrap(), None);
        assert_eq!(token_user(&s, &t[..t.len() - 1]).unwrap(), None);
        assert_eq!(token_user(&s, &format!("pl_{}", "0".repeat(64))).unwrap(), None);
        assert_eq!(token_user(&s, "").unwrap(), None);
        // A session token is not an API token.
        let u = crate::auth::verify_login(&s, "alice@example.org", PW).unwrap().unwrap();
        let (session, _) = crate::auth::create_session(&s, &u, Timestamp(3)).unwrap();
        assert_eq!(token_user(&s, &format!("pl_{session}")).unwrap(), None);
    }

    #[test]
    fn tokens_need_an_existing_user() {
        let s = TempStore::new("tokennouser");
        assert!(matches!(create_token(&s, "alice@example.org", Timestamp(1)), Err(AuthError::UnknownUser(_))));
        assert!(matches!(create_token(&s, "alice", Timestamp(1)), Err(AuthError::BadEmail(_))));
    }

    #[test]
    fn tokens_per_user_are_bounded_the_oldest_is_revoked() {
        let s = TempStore::new("tokenbound");
        create_user(&s, "alice@example.org", PW, Role::Admin, Timestamp(1)).unwrap();
        // All in one second, with the clock stepping back once: the first
        // made is the oldest whatever the clock says.
        let made: Vec<NewToken> = (0..MAX_TOKENS_PER_USER)
            .map(|i| create_token(&s, "alice@example.org", Timestamp(if i == 0 { 10 } else { 5 })).unwrap())
            .collect();
        assert!(made.iter().all(|t| t.revoked.is_none()));
        let extra = create_token(&s, "alice@example.org", Timestamp(5)).unwrap();
        assert_eq!(extra.revoked, Some(Timestamp(10)));
        assert_eq!(token_user(&s, &made[0].token).unwrap(), None);
        for t in made.iter().skip(1).chain([&extra]) {
            assert!(token_user(&s, &t.token).unwrap().is_some());
        }
    }
}
