//! The files of `web/` embedded in the binary, compressed by
//! `build.rs` (135 KB of text as 33 KB: the release binaries have a size
//! budget).
//!
//! The templates, translation catalogs and built-in domain mapping are one
//! deflate stream, inflated once, on first use, into text that lives as
//! long as the process (110 KB: what the templates and catalogs borrow
//! from). The files served to browsers (`static/*`, the `OpenAPI` document)
//! stay compressed: sent as they are with `Content-Encoding: gzip` to a
//! client that accepts it, inflated per request for one that does not.

use super::Resp;
use std::io::Read;
use std::sync::OnceLock;

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Bytes of a gzip member's header without optional fields (RFC 1952).
const GZIP_HEADER: usize = 10;
/// Bytes of a gzip member's trailer: CRC-32 and length (RFC 1952).
const GZIP_TRAILER: usize = 8;

/// The bytes of raw deflate stream `deflate`, which build.rs made of
/// `len` bytes.
fn inflate(deflate: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    // The reader the store inflates its blocks with: one copy of its code
    // in the binary.
    flate2::read::DeflateDecoder::new(deflate)
        .take(len as u64)
        .read_to_end(&mut out)
        .expect("build.rs wrote a deflate stream (tests::bundle_holds_the_files, served_files_inflate_to_the_files)");
    out
}

/// The bundle, inflated.
fn bundle() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let len = BUNDLE_FILES.iter().map(|(_, len)| len).sum();
        String::from_utf8(inflate(BUNDLE, len)).expect("build.rs bundled UTF-8 files")
    })
}

/// Every bundled file: its path under `web/` and its text, in bundle
/// order (build.rs's list, each directory sorted by name).
fn files() -> impl Iterator<Item = (&'static str, &'static str)> {
    let text = bundle();
    let mut at = 0;
    BUNDLE_FILES.iter().map(move |(path, len)| {
        // Invariant (build.rs): the lengths add up to the bundle's, and
        // each file starts and ends on a character boundary.
        let file = &text[at..at + len];
        at += len;
        (*path, file)
    })
}

/// Every bundled file under `dir` (a directory of `web/`): its name there
/// and its text, sorted by name.
pub(crate) fn bundled_in(dir: &str) -> impl Iterator<Item = (&'static str, &'static str)> {
    files().filter_map(move |(path, file)| Some((path.strip_prefix(dir)?.strip_prefix('/')?, file)))
}

/// The bundled file at `path` under `web/`.
///
/// # Panics
/// When `path` is not bundled: callers name files that build.rs bundles,
/// which their tests read.
pub(crate) fn bundled(path: &str) -> &'static str {
    match files().find(|(p, _)| *p == path) {
        Some((_, file)) => file,
        None => panic!("web/{path} is not in build.rs's bundle"),
    }
}

/// The served file at `path` under `web/`, 200 with its content type, in
/// gzip when the client accepts it (`gzip`), else inflated; `Vary:
/// Accept-Encoding` either way, for caches. `None` when there is no such
/// file.
pub(crate) fn serve(path: &str, gzip: bool) -> Option<Resp> {
    let (_, ctype, len, gz) = SERVED.iter().find(|(p, _, _, _)| *p == path)?;
    let resp = if gzip {
        Resp::new(200, ctype, *gz).with("Content-Encoding", "gzip".into())
    } else {
        // Invariant (build.rs): a gzip member without optional fields, so
        // its deflate stream lies between a 10-byte header and 8 bytes of
        // CRC-32 and length.
        let deflate = gz.get(GZIP_HEADER..gz.len().saturating_sub(GZIP_TRAILER)).unwrap_or_default();
        Resp::new(200, ctype, inflate(deflate, *len))
    };
    Some(resp.with("Vary", "Accept-Encoding".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(path: &str) -> Vec<u8> {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web").join(path)).expect("a file of web/")
    }

    #[test]
    fn bundle_holds_the_files() {
        assert_eq!(BUNDLE_FILES.iter().map(|(_, n)| n).sum::<usize>(), bundle().len());
        for (path, _) in BUNDLE_FILES {
            assert_eq!(bundled(path).as_bytes(), web(path), "{path}");
        }
        let templates: Vec<_> = bundled_in("templates").map(|(n, _)| n).collect();
        assert!(templates.contains(&"base.html") && templates.len() > 10, "{templates:?}");
        for (name, text) in bundled_in("i18n") {
            assert_eq!(text.as_bytes(), web(&format!("i18n/{name}")));
        }
        assert_eq!(bundled_in("i18").count(), 0);
    }

    #[test]
    fn served_files_inflate_to_the_files() {
        for (path, ctype, _, _) in SERVED {
            let plain = serve(path, false).expect("served");
            assert_eq!(plain.body, web(path), "{path}");
            assert_eq!(plain.ctype, *ctype);
            assert!(!plain.headers.iter().any(|(h, _)| *h == "Content-Encoding"));
            let gz = serve(path, true).expect("served");
            let mut body = Vec::new();
            flate2::read::GzDecoder::new(gz.body.as_slice()).read_to_end(&mut body).expect("gzip");
            assert_eq!(body, web(path), "{path}");
            assert!(gz.headers.contains(&("Content-Encoding", "gzip".into())));
            for r in [plain, gz] {
                assert!(r.headers.contains(&("Vary", "Accept-Encoding".into())));
            }
        }
        assert!(serve("static/nope.css", true).is_none());
        assert!(serve("i18n/en.txt", false).is_none());
    }
}
