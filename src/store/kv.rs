//! Small JSON documents by name (settings, escalations): one redb table,
//! read and written whole. Values are bounded by their producers
//! (`MAX_ESCALATIONS`, the settings form).

use super::{Store, StoreError};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Serialize, de::DeserializeOwned};

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");

impl Store {
    /// The document `key`, `None` when never written.
    ///
    /// # Errors
    /// Database failure or a document that does not decode as `T`.
    pub fn kv_get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let tx = self.db()?.begin_read()?;
        let t = match tx.open_table(KV) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(v) = t.get(key)? else { return Ok(None) };
        serde_json::from_slice(v.value()).map(Some).map_err(|e| StoreError::Document { key: key.to_owned(), reason: e.to_string() })
    }

    /// Replaces the document `key` (a durable commit of its own).
    ///
    /// # Errors
    /// Database failure.
    pub fn kv_put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Document { key: key.to_owned(), reason: e.to_string() })?;
        let tx = self.db()?.begin_write()?;
        tx.open_table(KV)?.insert(key, bytes.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Reads, changes and writes back `key` in one write transaction.
    ///
    /// # Errors
    /// Database failure or a document that does not decode as `T`.
    pub fn kv_update<T: Serialize + DeserializeOwned + Default>(&self, key: &str, f: impl FnOnce(&mut T)) -> Result<T, StoreError> {
        let doc = |e: serde_json::Error| StoreError::Document { key: key.to_owned(), reason: e.to_string() };
        let tx = self.db()?.begin_write()?;
        let v = {
            let mut t = tx.open_table(KV)?;
            let mut v: T = match t.get(key)? {
                Some(b) => serde_json::from_slice(b.value()).map_err(doc)?,
                None => T::default(),
            };
            f(&mut v);
            let bytes = serde_json::to_vec(&v).map_err(doc)?;
            t.insert(key, bytes.as_slice())?;
            v
        };
        tx.commit()?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn documents_round_trip_and_update() {
        let d = std::env::temp_dir().join(format!("postlens-kv-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let s = super::Store::open(&d).unwrap();
        assert_eq!(s.kv_get::<Vec<u32>>("x").unwrap(), None);
        s.kv_put("x", &vec![1u32, 2]).unwrap();
        assert_eq!(s.kv_get::<Vec<u32>>("x").unwrap(), Some(vec![1, 2]));
        let v = s.kv_update::<Vec<u32>>("x", |v| v.push(3)).unwrap();
        assert_eq!(v, vec![1, 2, 3]);
        assert!(s.kv_get::<String>("x").is_err(), "a document of another shape is an error, not a default");
        let _ = std::fs::remove_dir_all(&d);
    }
}
