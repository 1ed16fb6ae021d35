//! Stores written before the columnar format (schema 4: sealed blocks are
//! deflated postcard; hour marks and late-decided rollup keyed as in 5)
//! open, answer exactly as before (over whole hours too, from the
//! rollups), keep their rollup rows, and keep working when new
//! columnar blocks are added next to the old ones.

use super::levels::{self, Kind as _};
use super::{META, Store, blocks, columns, rollup};
use crate::clock::{Resolver, Timestamp};
use crate::ingest::{Options, Pipeline};
use crate::store::query::{Query, Window};
use crate::track::{DeliveryRec, EventRec, Outcome};
use redb::{ReadableDatabase, ReadableTable};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

fn genlog(dir: &Path, lines: usize) -> Vec<String> {
    let out = dir.join("gen.log");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/genlog.py");
    let st = std::process::Command::new("python3")
        .arg(script)
        .args(["--lines", &lines.to_string(), "--days", "2", "--seed", "5", "--start", "2026-03-01", "--format", "classic"])
        .args(["--utc-offset", "+00:00", "--queue-lifetime", "2d", "--quiet", "-o"])
        .arg(&out)
        .status()
        .expect("python3 runs benches/genlog.py");
    assert!(st.success());
    std::fs::read_to_string(out).unwrap().lines().map(str::to_owned).collect()
}

fn feed(store: &Arc<Store>, lines: &[String]) {
    let mut res = Resolver::new(jiff::tz::TimeZone::UTC, 2026);
    let mut p = Pipeline::new(store.clone(), Options::utc_2026()).unwrap();
    for (i, l) in lines.iter().enumerate() {
        p.feed(l.as_bytes(), &mut res);
        if (i + 1) % 7_000 == 0 {
            p.commit(false).unwrap();
        }
    }
    p.commit(true).unwrap();
}

/// What the readers answer: `stats` over several windows and detective
/// searches by sender, recipient domain, ID and status.
fn answers(s: &Store) -> String {
    let (first, last) = s.time_span().unwrap().unwrap();
    let mut out = String::new();
    let mid = Timestamp(i64::midpoint(first, last));
    for w in [
        Window::default(),
        Window { from: Some(mid), to: None },
        Window { from: Some(Timestamp(first + 4_000)), to: Some(Timestamp(first + 9_000)) },
        // Whole hours: answered from the rollups, late-decided ones included.
        Window { from: Some(Timestamp((first / 3600 + 1) * 3600)), to: Some(Timestamp(mid.0 / 3600 * 3600)) },
    ] {
        writeln!(out, "{:?}", s.stats(w).unwrap()).unwrap();
        writeln!(out, "{:?}", s.domains(w).unwrap()).unwrap();
    }
    let some: Vec<DeliveryRec> = s.search(&Query { limit: 50, ..Query::default() }).unwrap();
    assert!(some.len() == 50);
    for d in some.iter().step_by(7) {
        for q in [
            Query { sender: d.sender.clone(), limit: 1_000, ..Query::default() },
            Query {
                recipient: d.recipient.as_ref().and_then(|r| r.rfind('@').map(|i| r[i..].to_owned())),
                limit: 1_000,
                ..Query::default()
            },
            Query { id: d.queue_ids.first().cloned(), limit: 1_000, ..Query::default() },
            Query { id: d.message_id.clone(), limit: 1_000, ..Query::default() },
            Query { status: Some(Outcome::Bounced.as_str().to_owned()), limit: 1_000, ..Query::default() },
            Query { status: Some("deferred".to_owned()), limit: 1_000, ..Query::default() },
        ] {
            writeln!(out, "{:?}", s.search(&q).unwrap()).unwrap();
        }
    }
    out
}

/// A generated log, the answers of a store fed all of it in the current
/// format, and a store `old` fed its first `thirds` thirds.
struct Case {
    dir: std::path::PathBuf,
    lines: Vec<String>,
    cut: usize,
    want: String,
    old: Arc<Store>,
    before: String,
}

fn case(name: &str, lines: usize, thirds: usize) -> Case {
    let dir = std::env::temp_dir().join(format!("postlens-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let lines = genlog(&dir, lines);
    let cut = lines.len() * thirds / 3;
    let all = Arc::new(Store::open(&dir.join("all")).unwrap());
    feed(&all, &lines);
    let want = answers(&all);
    let old = Arc::new(Store::open(&dir.join("old")).unwrap());
    feed(&old, &lines[..cut]);
    let before = answers(&old);
    Case { dir, lines, cut, want, old, before }
}

/// Closes and opens `old` again, checking that opening relabelled it.
fn reopen(dir: &Path, old: Arc<Store>) -> Arc<Store> {
    drop(old);
    let old = Arc::new(Store::open(&dir.join("old")).unwrap());
    let schema = super::meta_u32(&old.db().unwrap().begin_read().unwrap(), "schema").unwrap();
    assert_eq!(schema, Some(super::SCHEMA_VERSION), "relabelled on opening");
    old
}

/// Every hour mark (hour, commit number).
fn marks(s: &Store) -> Vec<(u32, u32)> {
    rollup::marks(&s.db().unwrap().begin_read().unwrap(), 0, u32::MAX).unwrap()
}

/// The late-decided rollup's rows.
fn late(s: &Store) -> Vec<(u64, Vec<u8>)> {
    let tx = s.db().unwrap().begin_read().unwrap();
    tx.open_table(rollup::LATE).unwrap().iter().unwrap().map(|r| r.unwrap()).map(|(k, v)| (k.value(), v.value().to_vec())).collect()
}

/// A block of record kind `kind` as schema 4 wrote it: sealed, deflated
/// postcard; open, postcard behind LZ4 (as 5 and 6 did too).
fn as_old(kind: u8, bytes: &[u8], open: bool) -> Vec<u8> {
    match (kind == levels::Deliveries::ID, open) {
        (true, false) => blocks::encode_legacy(&blocks::decode::<DeliveryRec>(bytes).unwrap()).unwrap(),
        (false, false) => blocks::encode_legacy(&blocks::decode::<EventRec>(bytes).unwrap()).unwrap(),
        (true, true) => blocks::encode_open_lz4(&blocks::decode::<DeliveryRec>(bytes).unwrap()).unwrap(),
        (false, true) => blocks::encode_open_lz4(&blocks::decode::<EventRec>(bytes).unwrap()).unwrap(),
    }
}

/// Rewrites every block (sealed and open) and the hour marks as schema 4
/// wrote them and labels the store version 4; returns how many sealed
/// blocks were rewritten.
fn downgrade(s: &Store) -> usize {
    let tx = s.db().unwrap().begin_write().unwrap();
    let mut n = 0;
    {
        let open: std::collections::HashSet<(u8, u64)> =
            tx.open_table(levels::OPEN_BLOCKS).unwrap().iter().unwrap().map(|r| r.unwrap().0.value()).collect();
        for (kind, blocks_def, sums_def) in [
            (levels::Deliveries::ID, levels::Deliveries::BLOCKS, levels::Deliveries::SUMS),
            (levels::Events::ID, levels::Events::BLOCKS, levels::Events::SUMS),
        ] {
            let keys: Vec<u64> = tx.open_table(sums_def).unwrap().iter().unwrap().map(|r| r.unwrap().0.value()).collect();
            let mut b = tx.open_table(blocks_def).unwrap();
            for k in keys {
                let bytes = levels::get_block(&b, k).unwrap().unwrap();
                let is_open = open.contains(&(kind, k));
                assert_eq!(bytes[0] == columns::COLUMNAR_TAG, !is_open);
                levels::remove_block(&mut b, k).unwrap();
                levels::put_block(&mut b, k, &as_old(kind, &bytes, is_open)).unwrap();
                // The sealed ones (the assertion's count).
                n += usize::from(!is_open);
            }
        }
        let marks = marks(s);
        assert!(!marks.is_empty());
        tx.delete_table(rollup::MARKS).unwrap();
        let mut t = tx.open_table(rollup::MARKS_V5).unwrap();
        for (hour, generation) in marks {
            t.insert(hour, generation).unwrap();
        }
        drop(t);
        let late = late(s);
        assert!(!late.is_empty(), "messages decided in a later hour");
        tx.delete_table(rollup::LATE).unwrap();
        let mut t = tx.open_table(rollup::LATE_V5).unwrap();
        for (k, v) in late {
            t.insert((u32::try_from(k >> 32).unwrap(), u32::try_from(k & 0xffff_ffff).unwrap()), v.as_slice()).unwrap();
        }
        drop(t);
        tx.open_table(META).unwrap().insert("schema", postcard::to_allocvec(&4u32).unwrap().as_slice()).unwrap();
    }
    tx.commit().unwrap();
    n
}

fn first_bytes(s: &Store) -> Vec<u8> {
    let tx = s.db().unwrap().begin_read().unwrap();
    let t = tx.open_table(levels::Deliveries::BLOCKS).unwrap();
    t.iter().unwrap().map(|r| r.unwrap()).filter(|(k, _)| k.value().1 == 0).map(|(_, v)| v.value()[0]).collect()
}

#[test]
fn a_version_4_store_answers_as_before_and_takes_new_blocks() {
    // The first two thirds, as a version 4 postlens stored them.
    let Case { dir, lines, cut, want, old, before } = case("format4", 60_000, 2);
    let (marks_before, late_before) = (marks(&old), late(&old));
    assert!(downgrade(&old) >= 3, "sealed blocks of both kinds to rewrite");
    let old = reopen(&dir, old);
    assert!(first_bytes(&old).iter().all(|&b| b != columns::COLUMNAR_TAG), "old blocks are read, not rewritten");
    assert_eq!(answers(&old), before);
    assert_eq!(marks(&old), marks_before, "hour marks converted, none lost");
    assert_eq!(late(&old), late_before, "late-decided rollup converted, none lost");

    // The rest: new columnar blocks next to the old ones.
    feed(&old, &lines[cut..]);
    let tags = first_bytes(&old);
    assert!(tags.contains(&columns::COLUMNAR_TAG) && tags.iter().any(|&b| b != columns::COLUMNAR_TAG));
    assert_eq!(answers(&old), want);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Rewrites the open blocks as schema 6 wrote them (postcard behind LZ4)
/// and labels the store version 6; returns how many were rewritten.
fn downgrade_to_6(s: &Store) -> usize {
    let tx = s.db().unwrap().begin_write().unwrap();
    // Raw lines' open blocks keep their own format.
    let open: Vec<(u8, u64)> = tx
        .open_table(levels::OPEN_BLOCKS)
        .unwrap()
        .iter()
        .unwrap()
        .map(|r| r.unwrap().0.value())
        .filter(|(kind, _)| *kind != levels::Raw::ID)
        .collect();
    for &(kind, k) in &open {
        let def = if kind == levels::Deliveries::ID { levels::Deliveries::BLOCKS } else { levels::Events::BLOCKS };
        let mut b = tx.open_table(def).unwrap();
        let bytes = levels::get_block(&b, k).unwrap().unwrap();
        levels::remove_block(&mut b, k).unwrap();
        levels::put_block(&mut b, k, &as_old(kind, &bytes, true)).unwrap();
    }
    tx.open_table(META).unwrap().insert("schema", postcard::to_allocvec(&6u32).unwrap().as_slice()).unwrap();
    tx.commit().unwrap();
    open.len()
}

#[test]
fn a_version_6_store_with_lz4_open_blocks_is_relabelled_and_merges_them() {
    // The first third, as a version 6 postlens stored it.
    let Case { dir, lines, cut, want, old, before } = case("format6", 30_000, 1);
    assert!(downgrade_to_6(&old) >= 2, "open blocks of both kinds to rewrite");
    let old = reopen(&dir, old);
    assert_eq!(answers(&old), before, "LZ4 open blocks are read");
    // The rest merges the LZ4 open blocks (not in this process's cache)
    // into new blocks.
    feed(&old, &lines[cut..]);
    assert_eq!(answers(&old), want);
    let _ = std::fs::remove_dir_all(&dir);
}
