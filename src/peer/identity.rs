//! Identities: one Ed25519 key per installation (and one for the hub), kept
//! as a PKCS#8 file readable by its owner only. No e-mail, no account: the
//! public key is the whole identity. Signing and verification are ring's;
//! this module never sees a private key outside the key pair.

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// The largest key file read: a PKCS#8 v2 Ed25519 document is 83 bytes.
const MAX_KEY_FILE: u64 = 4096;

/// An Ed25519 public key: a reporter's or the hub's identity. Shown as 64
/// lower-case hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct KeyId(pub [u8; 32]);

impl KeyId {
    /// From 64 hex digits (either case).
    pub fn parse(s: &str) -> Option<KeyId> {
        let b = s.trim().as_bytes();
        if b.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
            *o = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
        }
        Some(KeyId(out))
    }

    pub fn hex(&self) -> String {
        hex(&self.0)
    }

    /// Whether `sig` is this key's signature of `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        sig.len() == SIGNATURE_LEN && UnparsedPublicKey::new(&ED25519, &self.0).verify(msg, sig).is_ok()
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hex())
    }
}

/// Lower-case hex of bytes.
pub fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(char::from(D[usize::from(x >> 4)]));
        s.push(char::from(D[usize::from(x & 15)]));
    }
    s
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Why a key could not be loaded or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0}: not an Ed25519 PKCS#8 key")]
    Invalid(String),
    #[error("no random numbers from the operating system")]
    Random,
}

/// An installation's (or the hub's) key pair.
pub struct Identity {
    pair: Ed25519KeyPair,
    id: KeyId,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Identity {
    /// A fresh key, kept in memory only (tests and the simulator).
    pub fn generate() -> Result<Identity, IdentityError> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| IdentityError::Random)?;
        Identity::from_pkcs8(doc.as_ref()).ok_or_else(|| IdentityError::Invalid("generated key".into()))
    }

    /// Reads the key at `path`, or makes one there (mode 0600, written to
    /// a temporary file and renamed, so a crash leaves no half key).
    pub fn load_or_create(path: &Path) -> Result<Identity, IdentityError> {
        let io = |source| IdentityError::Io { path: path.display().to_string(), source };
        match std::fs::metadata(path) {
            Ok(m) if m.len() > MAX_KEY_FILE => return Err(IdentityError::Invalid(path.display().to_string())),
            Ok(_) => {
                let b = std::fs::read(path).map_err(io)?;
                return Identity::from_pkcs8(&b).ok_or_else(|| IdentityError::Invalid(path.display().to_string()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| IdentityError::Random)?;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io)?;
        f.write_all(doc.as_ref()).and_then(|()| f.sync_all()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        Identity::from_pkcs8(doc.as_ref()).ok_or_else(|| IdentityError::Invalid(path.display().to_string()))
    }

    fn from_pkcs8(b: &[u8]) -> Option<Identity> {
        let pair = Ed25519KeyPair::from_pkcs8(b).ok()?;
        let id = KeyId(pair.public_key().as_ref().try_into().ok()?);
        Some(Identity { pair, id })
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(self.pair.sign(msg).as_ref());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_private_and_reloads_to_the_same_identity() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("postlens-peer-id-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join("peer.key");
        let a = Identity::load_or_create(&p).expect("create");
        let b = Identity::load_or_create(&p).expect("load");
        assert_eq!(a.id(), b.id());
        assert_eq!(std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777, 0o600);
        let sig = a.sign(b"msg");
        assert!(b.id().verify(b"msg", &sig));
        assert!(!b.id().verify(b"msg2", &sig));
        assert!(!b.id().verify(b"msg", &sig[..63]));
        std::fs::write(&p, b"junk").expect("write");
        assert!(matches!(Identity::load_or_create(&p), Err(IdentityError::Invalid(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn key_ids_round_trip_through_hex() {
        let id = Identity::generate().expect("key").id();
        assert_eq!(KeyId::parse(&id.hex()), Some(id));
        assert_eq!(KeyId::parse(&id.hex().to_uppercase()), Some(id));
        assert_eq!(KeyId::parse("00"), None);
        assert_eq!(KeyId::parse(&"g".repeat(64)), None);
    }
}
