//! Where a store's bytes go, per delivery (a measuring aid, not a test of
//! behaviour): `POSTLENS_ANALYZE_WS=DIR cargo test --lib analyze -- --ignored --nocapture`.
//! Ignored in the suite: it needs a real, large store to say anything.
#![expect(clippy::cast_precision_loss, reason = "a measuring aid: approximate figures")]

use super::levels::{self, Kind as _};
use super::{DELIVERY_BLOCKS, DELIVERY_SUMS, EVENT_BLOCKS, EVENT_SUMS, Store, blocks, columns};
use crate::track::{DeliveryRec, EventRec};
use redb::{ReadableDatabase, ReadableTable};

fn deflate(b: &[u8], level: u32) -> usize {
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(level));
    std::io::Write::write_all(&mut z, b).expect("in memory");
    z.finish().expect("in memory").len()
}

#[test]
#[ignore = "measures a real store: set POSTLENS_ANALYZE_WS"]
fn where_the_bytes_go() {
    let Ok(ws) = std::env::var("POSTLENS_ANALYZE_WS") else { return };
    let s = Store::open(std::path::Path::new(&ws)).expect("open");
    let tx = s.db().expect("db").begin_read().expect("read");
    let sums = tx.open_table(DELIVERY_SUMS).expect("t");
    let mut nd = 0u64;
    let mut sum_rows = 0u64;
    let mut bloom_bytes = 0u64;
    let mut distinct_keys = 0u64;
    for row in sums.iter().expect("iter") {
        let (_, v) = row.expect("row");
        let h: blocks::DeliverySummaryHead = postcard::from_bytes(v.value()).expect("sum");
        nd += h.counts.iter().flatten().sum::<u64>();
        sum_rows += v.value().len() as u64;
        let full: blocks::DeliverySummary = postcard::from_bytes(v.value()).expect("sum");
        bloom_bytes += full.bloom.len() as u64;
    }
    println!("deliveries {nd}");
    let per = |b: u64| b as f64 / nd as f64;
    for (name, st, frag) in s.table_space().expect("space") {
        println!("{name:14} {st:>12} B stored ({:6.1} B/delivery), {frag:>10} fragmented", per(st));
    }
    println!("delivery summaries: {:.1} B/delivery of rows, of which bloom {:.1}", per(sum_rows), per(bloom_bytes));
    let open: std::collections::HashSet<(u8, u64)> =
        tx.open_table(levels::OPEN_BLOCKS).expect("t").iter().expect("i").map(|r| r.expect("r").0.value()).collect();
    // Delivery blocks, sealed only.
    let data = tx.open_table(DELIVERY_BLOCKS).expect("t");
    let (mut cur, mut pc, mut pc6, mut pc9, mut col1, mut col6, mut col9, mut n) = (0, 0, 0, 0, 0, 0, 0, 0u64);
    for row in sums.iter().expect("iter") {
        let k = row.expect("row").0.value();
        if open.contains(&(levels::Deliveries::ID, k)) {
            continue;
        }
        let b = levels::get_block(&data, k).expect("get").expect("block");
        let ds: Vec<DeliveryRec> = blocks::decode(&b).expect("decode");
        let mut keys = std::collections::HashSet::new();
        for d in &ds {
            blocks::for_each_search_key(d, |k| {
                keys.insert(k.to_ascii_lowercase());
            });
        }
        distinct_keys += keys.len() as u64;
        n += ds.len() as u64;
        cur += b.len() as u64;
        let raw = postcard::to_allocvec(&ds).expect("enc");
        pc += raw.len() as u64;
        pc6 += deflate(&raw, 6) as u64;
        pc9 += deflate(&raw, 9) as u64;
        for (lvl, acc) in [(1, &mut col1), (6, &mut col6), (9, &mut col9)] {
            let c = columns::encode_deliveries_at(&ds, lvl).expect("enc");
            *acc += c.len() as u64;
        }
        let back = columns::decode_deliveries(&columns::encode_deliveries_at(&ds, 6).expect("e")[1..]).expect("dec");
        assert_eq!(back, ds);
    }
    let pn = |b: u64| b as f64 / n as f64;
    println!(
        "sealed delivery blocks: {n} records; now {:.1} B/rec; postcard {:.1}, +deflate6 {:.1}, +deflate9 {:.1}; columnar d1 {:.1} d6 {:.1} d9 {:.1}; distinct search keys {:.2}/rec",
        pn(cur),
        pn(pc),
        pn(pc6),
        pn(pc9),
        pn(col1),
        pn(col6),
        pn(col9),
        pn(distinct_keys)
    );
    let esums = tx.open_table(EVENT_SUMS).expect("t");
    let edata = tx.open_table(EVENT_BLOCKS).expect("t");
    let (mut cur, mut pc6, mut col1, mut col6, mut col9, mut n, mut rows) = (0, 0, 0, 0, 0, 0u64, 0u64);
    let mut kinds = [0u64; 7];
    for row in esums.iter().expect("iter") {
        let (k, v) = row.expect("row");
        rows += v.value().len() as u64;
        let k = k.value();
        if open.contains(&(levels::Events::ID, k)) {
            continue;
        }
        let b = levels::get_block(&edata, k).expect("get").expect("block");
        let es: Vec<EventRec> = blocks::decode(&b).expect("decode");
        for e in &es {
            use crate::track::EventKind as K;
            kinds[match e.kind {
                K::Connection => 0,
                K::Rejected => 1,
                K::Deferral { .. } => 2,
                K::Queued(_) => 3,
                K::WithDeferral(_) => 4,
                K::Notification(_) => 5,
                K::AuthFailure { .. } => 6,
            }] += 1;
        }
        let raw = postcard::to_allocvec(&es).expect("enc");
        pc6 += deflate(&raw, 6) as u64;
        for (lvl, acc) in [(1, &mut col1), (6, &mut col6), (9, &mut col9)] {
            *acc += columns::encode_events_at(&es, lvl).expect("enc").len() as u64;
        }
        let back = columns::decode_events(&columns::encode_events_at(&es, 6).expect("e")[1..]).expect("dec");
        assert_eq!(back, es);
        n += es.len() as u64;
        cur += b.len() as u64;
    }
    println!(
        "sealed event blocks: {n} events (conn/rej/defer/queued/withdef/notif/auth {kinds:?}); now {:.1} B/delivery; postcard+deflate6 {:.1}; columnar d1 {:.1} d6 {:.1} d9 {:.1}; summary rows {:.1}",
        per(cur),
        per(pc6),
        per(col1),
        per(col6),
        per(col9),
        per(rows)
    );
}
