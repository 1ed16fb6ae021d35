//! Compresses the web files the binary embeds (`src/web/assets.rs` reads
//! what this writes to `OUT_DIR`), for the release binaries' size budget
//! (issue 7: at most 6 MB each): 135 KB of text becomes 33 KB.
//!
//! - `bundle.deflate`: the templates, the translation catalogs and the
//!   built-in domain mapping, concatenated in one raw deflate stream (the
//!   files share most of their words, so one stream is 7 KB smaller than
//!   one per file). The daemon inflates it once, at start.
//! - `<name>.gz` for each file served to browsers (`static/*`, the `OpenAPI`
//!   document): a gzip member without optional fields (a 10-byte header,
//!   the deflate stream, CRC-32 and length), sent as it is to clients that
//!   accept gzip; the runtime inflates the deflate stream within it for
//!   the others.
//! - `assets.rs`: the tables naming them.
//!
//! Everything is deterministic (sorted names, no time stamp in the gzip
//! header), so equal sources give equal binaries. Inflating is already in
//! the binary (compressed log archives), so this adds no code to it.

use flate2::Compression;
use flate2::write::{DeflateEncoder, GzEncoder};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Directories and files of `web/` in the bundle, with the extension a
/// directory's files must have.
const BUNDLED: &[(&str, &str)] = &[("templates", "html"), ("i18n", "txt"), ("domain-mapping.txt", "")];

/// Files of `web/` served compressed, with their content type.
const SERVED: &[(&str, &str)] = &[
    ("static/style.css", "text/css; charset=utf-8"),
    ("static/app.js", "text/javascript; charset=utf-8"),
    ("static/favicon.svg", "image/svg+xml"),
    ("openapi.json", "application/json"),
];

fn main() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo::rerun-if-changed=web");

    let mut code = String::from("// Written by build.rs.\n\n");
    let mut bundle = Vec::new();
    code.push_str("/// The bundle's files: path under `web/` and length, in bundle order.\nconst BUNDLE_FILES: &[(&str, usize)] = &[\n");
    for (entry, ext) in BUNDLED {
        for (name, path) in files(&web, entry, ext) {
            // Each file is UTF-8, so the bundle is, and every file of it
            // starts and ends on a character boundary.
            let text = String::from_utf8(read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            writeln!(code, "    ({name:?}, {}),", text.len()).expect("write to a String");
            bundle.extend_from_slice(text.as_bytes());
        }
    }
    code.push_str("];\n\n");
    let mut deflate = DeflateEncoder::new(Vec::new(), Compression::best());
    deflate.write_all(&bundle).expect("write to a Vec");
    std::fs::write(out.join("bundle.deflate"), deflate.finish().expect("write to a Vec")).expect("write bundle.deflate");
    code.push_str("const BUNDLE: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/bundle.deflate\"));\n\n");

    code.push_str(
        "/// Served files: path under `web/`, content type, length, gzip member.\nconst SERVED: &[(&str, &str, usize, &[u8])] = &[\n",
    );
    for (name, ctype) in SERVED {
        let gz = format!("{}.gz", name.replace('/', "-"));
        let plain = read(&web.join(name));
        std::fs::write(out.join(&gz), gzip(&plain)).expect("write a served file");
        let len = plain.len();
        writeln!(code, "    ({name:?}, {ctype:?}, {len}, include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{gz}\"))),")
            .expect("write to a String");
    }
    code.push_str("];\n");
    std::fs::write(out.join("assets.rs"), code).expect("write assets.rs");
}

/// `entry` under `web` when it is a file, else its files ending in `.ext`,
/// sorted: (path under `web/`, full path).
fn files(web: &Path, entry: &str, ext: &str) -> Vec<(String, PathBuf)> {
    let path = web.join(entry);
    if path.is_file() {
        return vec![(entry.to_owned(), path)];
    }
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .map(|p| (format!("{entry}/{}", p.file_name().expect("a file name").to_string_lossy()), p))
        .collect();
    found.sort();
    found
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A gzip member of `data` without optional header fields (FLG 0), as
/// `src/web/assets.rs` expects.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    e.write_all(data).expect("write to a Vec");
    let gz = e.finish().expect("write to a Vec");
    assert_eq!(gz[3], 0, "a gzip header with optional fields");
    gz
}
