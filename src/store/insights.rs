//! The insights table: one JSON document per insight, keyed by its number
//! (row 0: the next number).
//! Bounded by `limits::MAX_INSIGHTS` (the engine evicts before adding).
//! Written rarely (a finding, an admin's action), each write its own small
//! durable transaction beside the ingestion writer's.

use super::{Store, StoreError};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Serialize, de::DeserializeOwned};

const INSIGHTS: TableDefinition<u64, &[u8]> = TableDefinition::new("insights");

fn doc(id: u64, e: &serde_json::Error) -> StoreError {
    StoreError::Document { key: format!("insight {id}"), reason: e.to_string() }
}

impl Store {
    /// Changes whenever the stored insights do (see `insights_update`):
    /// read it before the insights to know what a derived value is from.
    pub fn insights_generation(&self) -> u64 {
        self.insights_gen.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Every stored insight, oldest number first.
    ///
    /// # Errors
    /// Database failure or an undecodable document.
    pub fn insights_all<T: DeserializeOwned>(&self) -> Result<Vec<(u64, T)>, StoreError> {
        let tx = self.db()?.begin_read()?;
        let t = match tx.open_table(INSIGHTS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for row in t.range(1..)? {
            let (k, v) = row?;
            let id = k.value();
            out.push((id, serde_json::from_slice(v.value()).map_err(|e| doc(id, &e))?));
        }
        Ok(out)
    }

    /// Reads the whole set and applies the changes `f` returns, in one
    /// write transaction: `(Some(id), doc)` replaces, `(None, doc)` adds
    /// under a new number, and the ids in the second list are removed.
    /// Returns the numbers given to the added documents.
    ///
    /// # Errors
    /// Database failure or an undecodable document.
    pub fn insights_update<T: Serialize + DeserializeOwned>(
        &self,
        f: impl FnOnce(Vec<(u64, T)>) -> (Vec<(Option<u64>, T)>, Vec<u64>),
    ) -> Result<Vec<u64>, StoreError> {
        let tx = self.db()?.begin_write()?;
        let added = {
            let mut t = tx.open_table(INSIGHTS)?;
            let mut all: Vec<(u64, T)> = Vec::new();
            for row in t.range(1..)? {
                let (k, v) = row?;
                let id = k.value();
                all.push((id, serde_json::from_slice(v.value()).map_err(|e| doc(id, &e))?));
            }
            // Row 0 keeps the next number, so a removed insight's number
            // is never given to another (links to it stay unambiguous).
            let stored: u64 = t.get(0)?.and_then(|v| serde_json::from_slice(v.value()).ok()).unwrap_or(1);
            let mut next = stored.max(all.last().map_or(1, |(id, _)| id + 1));
            let (put, remove) = f(all);
            for id in remove {
                t.remove(id)?;
            }
            let mut added = Vec::new();
            for (id, v) in put {
                let id = id.unwrap_or_else(|| {
                    next += 1;
                    added.push(next - 1);
                    next - 1
                });
                let bytes = serde_json::to_vec(&v).map_err(|e| doc(id, &e))?;
                t.insert(id, bytes.as_slice())?;
            }
            t.insert(0, serde_json::to_vec(&next).unwrap_or_default().as_slice())?;
            added
        };
        tx.commit()?;
        self.insights_gen.fetch_add(1, std::sync::atomic::Ordering::Release);
        Ok(added)
    }
}
