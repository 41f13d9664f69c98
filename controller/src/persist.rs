//! Standalone mode's state: the model in an embedded redb file, written in one transaction per
//! change (before the change is published), read back on start.

use std::path::Path;

use redb::{Database, ReadableDatabase, TableDefinition};

use crate::ipam::Reservation;
use crate::model::{Attachment, AttachmentId, Model, Network, Node};
use crate::store::Persist;

/// The model as stored: maps with structured keys become lists (JSON keys must be strings).
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    nodes: Vec<Node>,
    networks: Vec<Network>,
    attachments: Vec<Attachment>,
    reservations: Vec<(AttachmentId, Reservation)>,
}

impl From<&Model> for Stored {
    fn from(m: &Model) -> Self {
        Stored {
            nodes: m.nodes.values().cloned().collect(),
            networks: m.networks.values().cloned().collect(),
            attachments: m.attachments.values().cloned().collect(),
            reservations: m
                .reservations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

impl From<Stored> for Model {
    fn from(s: Stored) -> Self {
        Model {
            nodes: s.nodes.into_iter().map(|n| (n.name.clone(), n)).collect(),
            networks: s.networks.into_iter().map(|n| (n.key.clone(), n)).collect(),
            attachments: s
                .attachments
                .into_iter()
                .map(|a| (a.id.clone(), a))
                .collect(),
            reservations: s.reservations.into_iter().collect(),
        }
    }
}

const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
const MODEL_KEY: &str = "model";
const VERSION_KEY: &str = "version";

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("database {path}: {source}")]
    Open {
        path: String,
        source: Box<redb::DatabaseError>,
    },
    #[error("database: {0}")]
    Db(String),
    #[error("stored model is unreadable (written by an incompatible version?): {0}")]
    Decode(#[from] serde_json::Error),
}

fn db_err(e: impl std::fmt::Display) -> PersistError {
    PersistError::Db(e.to_string())
}

/// The model file.
pub struct RedbStore {
    db: Database,
}

impl RedbStore {
    pub fn open(path: &Path) -> Result<Self, PersistError> {
        let db = Database::create(path).map_err(|e| PersistError::Open {
            path: path.display().to_string(),
            source: Box::new(e),
        })?;
        Ok(RedbStore { db })
    }

    /// The stored model and its version, or an empty model at version 0.
    pub fn load(&self) -> Result<(Model, u64), PersistError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = match tx.open_table(STATE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok((Model::default(), 0)),
            Err(e) => return Err(db_err(e)),
        };
        let model = match table.get(MODEL_KEY).map_err(db_err)? {
            Some(v) => serde_json::from_slice::<Stored>(v.value())?.into(),
            None => Model::default(),
        };
        let version = match table.get(VERSION_KEY).map_err(db_err)? {
            Some(v) => {
                let b: [u8; 8] = v
                    .value()
                    .try_into()
                    .map_err(|_| PersistError::Db("stored version is not 8 bytes".into()))?;
                u64::from_be_bytes(b)
            }
            None => 0,
        };
        Ok((model, version))
    }

    fn write(&self, version: u64, model: &Model) -> Result<(), PersistError> {
        let bytes = serde_json::to_vec(&Stored::from(model))?;
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(STATE).map_err(db_err)?;
            t.insert(MODEL_KEY, bytes.as_slice()).map_err(db_err)?;
            t.insert(VERSION_KEY, version.to_be_bytes().as_slice())
                .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }
}

impl Persist for RedbStore {
    fn save(&self, version: u64, model: &Model) -> Result<(), String> {
        self.write(version, model).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NetworkKey, NetworkSpec};

    #[test]
    fn model_survives_reopening() {
        let dir = std::env::temp_dir().join(format!("weft-redb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.redb");
        let _ = std::fs::remove_file(&path);
        {
            let s = RedbStore::open(&path).unwrap();
            assert_eq!(s.load().unwrap(), (Model::default(), 0));
            let mut m = Model::default();
            m.add_network(NetworkKey::new("ns", "a"), &NetworkSpec::default())
                .unwrap();
            s.save(7, &m).unwrap();
        }
        let s = RedbStore::open(&path).unwrap();
        let (m, v) = s.load().unwrap();
        assert_eq!(v, 7);
        assert_eq!(m.networks.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
