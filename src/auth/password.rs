//! Passwords: the strength rules a new password must pass, and argon2id
//! hashing (PHC strings, a fresh 16-byte salt from the OS per hash) and
//! verification, whose comparison is constant-time inside the `argon2`
//! crate. Nothing here stores or prints a password.

use super::users::Email;
use super::{
    ARGON2_M_COST_KIB, ARGON2_P_COST, ARGON2_T_COST, AuthError, MAX_PASSWORD_BYTES, MIN_DISTINCT_CHARS, MIN_PASSWORD_CHARS,
    SHORT_PASSWORD_CHARS,
};
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

/// The embedded list of passwords too common to accept (see the file).
const COMMON: &str = include_str!("common-passwords.txt");

/// A hash of a random, forgotten password with the current parameters:
/// logins for unknown e-mail addresses are verified against it, so they
/// take as long as logins for real ones. A test pins its parameters to the
/// constants.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$S+uskPK+r1NxWnPADhb5gQ$IHUc7KTSBe4v91O+MV6dddpz2lUW3nUgn+VDctsbYo4";

/// Why a new password is refused; the messages say what to change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordProblem {
    #[error("too short: {chars} characters; use at least {MIN_PASSWORD_CHARS} (a few unrelated words make a good password)")]
    TooShort { chars: usize },
    #[error("too long: more than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("too common: it is on the list of the most used passwords")]
    Common,
    #[error("contains the name part of the e-mail address")]
    ContainsEmail,
    #[error("only {0} in {1} characters: mix in upper case, digits or symbols, or make it at least {SHORT_PASSWORD_CHARS} characters long")]
    OneClass(&'static str, usize),
    #[error("only {0} different characters; use at least {MIN_DISTINCT_CHARS}")]
    FewDistinct(usize),
}

/// Checks a new password for `email`'s account.
///
/// # Errors
/// The first rule it breaks: shorter than [`MIN_PASSWORD_CHARS`] characters,
/// longer than [`MAX_PASSWORD_BYTES`] bytes, on the embedded list of common
/// passwords (any case), containing the address's local part (of 3 or more
/// characters, any case), of one character class only while shorter than
/// [`SHORT_PASSWORD_CHARS`], or fewer than [`MIN_DISTINCT_CHARS`] different
/// characters.
pub fn check_strength(password: &str, email: &Email) -> Result<(), PasswordProblem> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordProblem::TooShort { chars });
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordProblem::TooLong);
    }
    let lower = password.to_lowercase();
    if is_common(&lower) {
        return Err(PasswordProblem::Common);
    }
    let local = email.local_part();
    if local.chars().count() >= 3 && lower.contains(local) {
        return Err(PasswordProblem::ContainsEmail);
    }
    if chars < SHORT_PASSWORD_CHARS {
        let mut classes = [false; 4];
        for c in password.chars() {
            classes[class(c)] = true;
        }
        if let [only] = classes.iter().enumerate().filter(|(_, on)| **on).map(|(i, _)| i).collect::<Vec<_>>()[..] {
            const NAMES: [&str; 4] = ["lower-case letters", "upper-case letters", "digits", "symbols"];
            return Err(PasswordProblem::OneClass(NAMES[only], chars));
        }
    }
    let mut distinct: Vec<char> = password.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < MIN_DISTINCT_CHARS {
        return Err(PasswordProblem::FewDistinct(distinct.len()));
    }
    Ok(())
}

/// 0 lower case, 1 upper case, 2 digit, 3 anything else.
fn class(c: char) -> usize {
    if c.is_lowercase() {
        0
    } else if c.is_uppercase() {
        1
    } else if c.is_numeric() {
        2
    } else {
        3
    }
}

fn is_common(lower: &str) -> bool {
    common_list().any(|c| c == lower)
}

fn common_list() -> impl Iterator<Item = &'static str> {
    COMMON.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
}

fn hasher() -> Result<Argon2<'static>, AuthError> {
    let params = Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, Some(Params::DEFAULT_OUTPUT_LEN))
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The argon2id PHC string of `password`, with a fresh random salt.
///
/// # Errors
/// The random source or the hash failed.
pub(crate) fn hash(password: &str) -> Result<String, AuthError> {
    let h = hasher()?.hash_password(password.as_bytes()).map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(h.to_string())
}

/// Whether `password` matches the PHC string `phc` (with the parameters
/// written in it). A malformed string matches nothing.
pub(crate) fn verify(password: &str, phc: &str) -> bool {
    hasher().is_ok_and(|a| a.verify_password(password.as_bytes(), phc).is_ok())
}

/// Spends the time of one verification and fails: for unknown users.
pub(crate) fn verify_dummy(password: &str) -> bool {
    verify(password, DUMMY_HASH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    #[test]
    fn hash_verifies_its_password_only() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        assert!(!verify("", &h));
        assert!(!verify("correct horse battery", "not a PHC string"));
    }

    #[test]
    fn each_hash_has_its_own_salt() {
        let a = hash("correct horse battery").unwrap();
        let b = hash("correct horse battery").unwrap();
        assert_ne!(a, b);
        assert!(verify("correct horse battery", &b));
    }

    #[test]
    fn the_dummy_hash_uses_the_current_parameters() {
        let prefix = format!("$argon2id$v=19$m={ARGON2_M_COST_KIB},t={ARGON2_T_COST},p={ARGON2_P_COST}$");
        assert!(DUMMY_HASH.starts_with(&prefix), "regenerate DUMMY_HASH with hash(): {prefix}");
        assert!(argon2::password_hash::phc::PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify_dummy("correct horse battery"));
    }

    #[test]
    fn length_rules() {
        let e = email("alice@example.org");
        assert_eq!(check_strength("Tr0ub4dor", &e), Err(PasswordProblem::TooShort { chars: 9 }));
        // Characters, not bytes: nine two-byte letters are still too short.
        assert_eq!(check_strength("éééééééé1", &e), Err(PasswordProblem::TooShort { chars: 9 }));
        assert_eq!(check_strength("Tr0ub4dor&", &e), Ok(()));
        let long: String = "Tr0ub4dor&3 ".repeat(100);
        assert_eq!(check_strength(&long, &e), Err(PasswordProblem::TooLong));
    }

    #[test]
    fn one_class_is_refused_only_when_short() {
        let e = email("alice@example.org");
        assert_eq!(check_strength("kqzvmwpxtr", &e), Err(PasswordProblem::OneClass("lower-case letters", 10)));
        assert_eq!(check_strength("KQZVMWPXTR", &e), Err(PasswordProblem::OneClass("upper-case letters", 10)));
        assert_eq!(check_strength("8403917265", &e), Err(PasswordProblem::OneClass("digits", 10)));
        assert_eq!(check_strength("!#%&/()=?+", &e), Err(PasswordProblem::OneClass("symbols", 10)));
        assert_eq!(check_strength("kqzvmwpxt7", &e), Ok(()));
        assert_eq!(check_strength("kqzvmwpxtR", &e), Ok(()));
        // 16 characters and more: a passphrase of lower-case words is fine.
        assert_eq!(check_strength("kqzvmwpxtrlbnhgf", &e), Ok(()));
        assert_eq!(check_strength("kqzvmwpxtrlbnhg", &e), Err(PasswordProblem::OneClass("lower-case letters", 15)));
    }

    #[test]
    fn few_distinct_characters_are_refused() {
        let e = email("alice@example.org");
        assert_eq!(check_strength("abababababababababab", &e), Err(PasswordProblem::FewDistinct(2)));
        assert_eq!(check_strength("Ab1Ab1Ab1Ab1", &e), Err(PasswordProblem::FewDistinct(3)));
        assert_eq!(check_strength("Ab1cdAb1cd", &e), Ok(()));
    }

    #[test]
    fn the_local_part_of_the_address_is_refused() {
        let e = email("Margaret@example.org");
        assert_eq!(check_strength("margaret", &e), Err(PasswordProblem::TooShort { chars: 8 }));
        assert_eq!(check_strength("margaret2026", &e), Err(PasswordProblem::ContainsEmail));
        assert_eq!(check_strength("x!MARGARET!x", &e), Err(PasswordProblem::ContainsEmail));
        assert_eq!(check_strength("m4rgaret-2026", &e), Ok(()));
        // A local part of one or two letters would forbid too much.
        assert_eq!(check_strength("jones-and-4-more", &email("jo@example.org")), Ok(()));
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        let e = email("alice@example.org");
        assert_eq!(check_strength("password123", &e), Err(PasswordProblem::Common));
        assert_eq!(check_strength("Password123", &e), Err(PasswordProblem::Common));
        assert_eq!(check_strength("QWERTYuiop1", &e), Err(PasswordProblem::Common));
        assert_eq!(check_strength("1234567890", &e), Err(PasswordProblem::Common));
        assert_eq!(check_strength("postlens1234", &e), Err(PasswordProblem::Common));
    }

    #[test]
    fn the_common_list_is_well_formed() {
        let all: Vec<&str> = common_list().collect();
        assert!(all.len() >= 100, "{} entries", all.len());
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len(), "duplicates in the list");
        for p in all {
            assert_eq!(p, p.to_lowercase(), "entries are compared lower-cased");
            // Shorter entries would be refused for length anyway: dead weight.
            assert!(p.chars().count() >= MIN_PASSWORD_CHARS, "{p} is shorter than the minimum");
            assert!(is_common(p));
        }
    }

    #[test]
    fn messages_say_what_to_change() {
        assert!(PasswordProblem::TooShort { chars: 4 }.to_string().contains("at least 10"));
        assert!(PasswordProblem::OneClass("digits", 10).to_string().contains("only digits"));
        assert!(PasswordProblem::Common.to_string().contains("common"));
        assert!(PasswordProblem::ContainsEmail.to_string().contains("e-mail"));
    }
}
