//! Standalone mode's state: the model in an embedded redb file, read back on start. Each change
//! is written (before it is published) as one transaction holding only the entries it touched,
//! one record per node, network, attachment and reservation: a CNI ADD costs one small commit,
//! not a rewrite of the whole model (which grew with every attachment).

use std::collections::BTreeMap;
use std::path::Path;

use imbl::OrdMap;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::changes::walk;
use crate::ipam::Reservation;
use crate::model::{Attachment, AttachmentId, Model, Network, NetworkKey, Node};
use crate::store::Persist;

/// The whole model in one JSON value: the format of the first releases, migrated on load.
#[derive(serde::Deserialize)]
struct Legacy {
    nodes: Vec<Node>,
    networks: Vec<Network>,
    attachments: Vec<Attachment>,
    reservations: Vec<(AttachmentId, Reservation)>,
}

/// Version, and the legacy whole-model blob.
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
const LEGACY_MODEL_KEY: &str = "model";
const VERSION_KEY: &str = "version";
/// One record per entity: key = the entity's key as JSON, value = the entity as JSON.
const NODES: TableDefinition<&str, &[u8]> = TableDefinition::new("nodes");
const NETWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("networks");
const ATTACHMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("attachments");
const RESERVATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("reservations");

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

/// Reads every record of one entity table into a map.
fn read_table<K: Ord + DeserializeOwned, V: DeserializeOwned>(
    tx: &redb::ReadTransaction,
    def: TableDefinition<&str, &[u8]>,
) -> Result<BTreeMap<K, V>, PersistError> {
    let table = match tx.open_table(def) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(BTreeMap::new()),
        Err(e) => return Err(db_err(e)),
    };
    let mut out = BTreeMap::new();
    for row in table.iter().map_err(db_err)? {
        let (k, v) = row.map_err(db_err)?;
        out.insert(
            serde_json::from_str(k.value())?,
            serde_json::from_slice(v.value())?,
        );
    }
    Ok(out)
}

/// Writes the entries of one map that differ between `old` and `new`: a diff of persistent maps
/// that skips what they share, so a save costs O(change).
fn write_changes<K: Ord + Clone + Serialize, V: PartialEq + Clone + Serialize>(
    tx: &WriteTransaction,
    def: TableDefinition<&str, &[u8]>,
    old: &OrdMap<K, V>,
    new: &OrdMap<K, V>,
) -> Result<(), PersistError> {
    let mut t = tx.open_table(def).map_err(db_err)?;
    let mut failed = None;
    walk(old, new, |k, _, v| {
        if failed.is_some() {
            return;
        }
        let r = serde_json::to_string(k)
            .map_err(PersistError::from)
            .and_then(|key| match v {
                Some(v) => {
                    let bytes = serde_json::to_vec(v)?;
                    t.insert(key.as_str(), bytes.as_slice())
                        .map(|_| ())
                        .map_err(db_err)
                }
                None => t.remove(key.as_str()).map(|_| ()).map_err(db_err),
            });
        failed = r.err();
    });
    failed.map_or(Ok(()), Err)
}

impl RedbStore {
    pub fn open(path: &Path) -> Result<Self, PersistError> {
        let db = Database::create(path).map_err(|e| PersistError::Open {
            path: path.display().to_string(),
            source: Box::new(e),
        })?;
        Ok(RedbStore { db })
    }

    /// The stored model and its version, or an empty model at version 0. A file in the legacy
    /// one-blob format is converted to records first (in one transaction).
    pub fn load(&self) -> Result<(Model, u64), PersistError> {
        self.migrate_legacy()?;
        let tx = self.db.begin_read().map_err(db_err)?;
        let version = match tx.open_table(STATE) {
            Ok(t) => match t.get(VERSION_KEY).map_err(db_err)? {
                Some(v) => {
                    let b: [u8; 8] = v
                        .value()
                        .try_into()
                        .map_err(|_| PersistError::Db("stored version is not 8 bytes".into()))?;
                    u64::from_be_bytes(b)
                }
                None => 0,
            },
            Err(redb::TableError::TableDoesNotExist(_)) => 0,
            Err(e) => return Err(db_err(e)),
        };
        let model = model_of(
            read_table::<String, Node>(&tx, NODES)?.into_values(),
            read_table::<NetworkKey, Network>(&tx, NETWORKS)?.into_values(),
            read_table::<AttachmentId, Attachment>(&tx, ATTACHMENTS)?.into_values(),
            read_table(&tx, RESERVATIONS)?,
        );
        Ok((model, version))
    }

    fn migrate_legacy(&self) -> Result<(), PersistError> {
        let legacy: Legacy = {
            let tx = self.db.begin_read().map_err(db_err)?;
            let table = match tx.open_table(STATE) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
                Err(e) => return Err(db_err(e)),
            };
            match table.get(LEGACY_MODEL_KEY).map_err(db_err)? {
                Some(v) => serde_json::from_slice(v.value())?,
                None => return Ok(()),
            }
        };
        let model = model_of(
            legacy.nodes,
            legacy.networks,
            legacy.attachments,
            legacy.reservations,
        );
        let tx = self.db.begin_write().map_err(db_err)?;
        write_all(&tx, &Model::default(), &model)?;
        tx.open_table(STATE)
            .map_err(db_err)?
            .remove(LEGACY_MODEL_KEY)
            .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        tracing::info!(
            attachments = model.attachments.len(),
            "state file converted to per-record format"
        );
        Ok(())
    }

    fn write(
        &self,
        version: u64,
        old: &Model,
        new: &Model,
        durable: bool,
    ) -> Result<(), PersistError> {
        let mut tx = self.db.begin_write().map_err(db_err)?;
        if !durable {
            // Made durable by the next durable commit; lost in a crash before it.
            tx.set_durability(redb::Durability::None).map_err(db_err)?;
        }
        write_all(&tx, old, new)?;
        tx.open_table(STATE)
            .map_err(db_err)?
            .insert(VERSION_KEY, version.to_be_bytes().as_slice())
            .map_err(db_err)?;
        tx.commit().map_err(db_err)
    }
}

fn write_all(tx: &WriteTransaction, old: &Model, new: &Model) -> Result<(), PersistError> {
    write_changes(tx, NODES, &old.nodes, &new.nodes)?;
    write_changes(tx, NETWORKS, &old.networks, &new.networks)?;
    write_changes(
        tx,
        ATTACHMENTS,
        old.attachments.map(),
        new.attachments.map(),
    )?;
    write_changes(
        tx,
        RESERVATIONS,
        old.reservations.map(),
        new.reservations.map(),
    )
}

/// A model from stored records, each keyed by its own identity.
fn model_of(
    nodes: impl IntoIterator<Item = Node>,
    networks: impl IntoIterator<Item = Network>,
    attachments: impl IntoIterator<Item = Attachment>,
    reservations: impl IntoIterator<Item = (AttachmentId, Reservation)>,
) -> Model {
    let mut m = Model {
        nodes: nodes.into_iter().map(|n| (n.name.clone(), n)).collect(),
        networks: networks.into_iter().map(|n| (n.key.clone(), n)).collect(),
        ..Model::default()
    };
    for a in attachments {
        m.attachments.insert(a);
    }
    for (id, r) in reservations {
        m.reservations.insert(id, r);
    }
    m
}

impl Persist for RedbStore {
    fn save(&self, version: u64, old: &Model, new: &Model, durable: bool) -> Result<(), String> {
        self.write(version, old, new, durable)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NetworkKey, PodRef};
    use weft_api::VirtualNetworkSpec;

    struct TempDir(std::path::PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let d = std::env::temp_dir().join(format!("weft-redb-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            TempDir(d)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn with_pod(m: &Model, id: &str) -> Model {
        let mut m = m.clone();
        let net = NetworkKey::new("ns", "a");
        if !m.networks.contains_key(&net) {
            m.add_network(net.clone(), &VirtualNetworkSpec::default())
                .unwrap();
        }
        m.nodes.entry("n1".into()).or_insert(Node {
            name: "n1".into(),
            underlay_ip: "192.0.2.1".parse().unwrap(),
            datapath_id: 1,
            tunnel_ports: BTreeMap::new(),
        });
        let a = Attachment {
            // A slash in the id: keys are JSON, not joined strings.
            id: AttachmentId {
                container_id: format!("c/{id}"),
                ifname: "net1".into(),
            },
            network: net,
            node: "n1".into(),
            ofport: 3,
            mac: [2, 0, 0, 0, 0, id.len() as u8],
            ips: vec![],
            pod: PodRef {
                namespace: "ns".into(),
                name: id.into(),
                uid: id.into(),
            },
        };
        m.attachments.insert(a);
        m
    }

    #[test]
    fn model_survives_reopening() {
        let dir = TempDir::new("reopen");
        let path = dir.0.join("state.redb");
        {
            let s = RedbStore::open(&path).unwrap();
            assert_eq!(s.load().unwrap(), (Model::default(), 0));
            let mut m = Model::default();
            m.add_network(NetworkKey::new("ns", "a"), &VirtualNetworkSpec::default())
                .unwrap();
            let off = VirtualNetworkSpec {
                port_security: weft_api::PortSecurity::Off,
                ..Default::default()
            };
            m.add_network(NetworkKey::new("ns", "b"), &off).unwrap();
            s.save(7, &Model::default(), &m, true).unwrap();
        }
        let s = RedbStore::open(&path).unwrap();
        let (m, v) = s.load().unwrap();
        assert_eq!(v, 7);
        assert_eq!(m.networks.len(), 2);
        let mode = |n: &str| m.networks[&NetworkKey::new("ns", n)].port_security;
        assert_eq!(mode("a"), weft_api::PortSecurity::Strict);
        assert_eq!(mode("b"), weft_api::PortSecurity::Off);
    }

    #[test]
    fn each_save_writes_only_the_difference_and_removals_stick() {
        let dir = TempDir::new("delta");
        let path = dir.0.join("state.redb");
        let s = RedbStore::open(&path).unwrap();
        let m1 = with_pod(&Model::default(), "p1");
        let m2 = with_pod(&m1, "p22");
        s.save(1, &Model::default(), &m1, true).unwrap();
        // Not durable on its own: the durable commit after it makes it so.
        s.save(2, &m1, &m2, false).unwrap();
        let mut m3 = m2.clone();
        m3.detach(&AttachmentId {
            container_id: "c/p1".into(),
            ifname: "net1".into(),
        });
        s.save(3, &m2, &m3, true).unwrap();
        drop(s);
        let (m, v) = RedbStore::open(&path).unwrap().load().unwrap();
        assert_eq!((m, v), (m3, 3));
    }

    #[test]
    fn a_legacy_single_blob_file_is_converted() {
        let dir = TempDir::new("legacy");
        let path = dir.0.join("state.redb");
        let m = with_pod(&Model::default(), "p1");
        {
            let db = Database::create(&path).unwrap();
            let blob = serde_json::json!({
                "nodes": m.nodes.values().collect::<Vec<_>>(),
                "networks": m.networks.values().collect::<Vec<_>>(),
                "attachments": m.attachments.values().collect::<Vec<_>>(),
                "reservations": [],
            });
            let tx = db.begin_write().unwrap();
            {
                let mut t = tx.open_table(STATE).unwrap();
                let bytes = serde_json::to_vec(&blob).unwrap();
                t.insert(LEGACY_MODEL_KEY, bytes.as_slice()).unwrap();
                t.insert(VERSION_KEY, 9u64.to_be_bytes().as_slice())
                    .unwrap();
            }
            tx.commit().unwrap();
        }
        let s = RedbStore::open(&path).unwrap();
        assert_eq!(s.load().unwrap(), (m.clone(), 9));
        // Converted once: later saves are deltas against it and it loads the same way.
        let m2 = with_pod(&m, "p22");
        s.save(10, &m, &m2, true).unwrap();
        assert_eq!(s.load().unwrap(), (m2, 10));
    }

    /// Records exactly as earlier releases wrote them: the in-memory types may change, the
    /// files on disk must still load.
    #[test]
    fn records_of_earlier_releases_load() {
        let dir = TempDir::new("records");
        let path = dir.0.join("state.redb");
        let rows = [
            (
                NODES,
                r#""n1""#,
                r#"{"name":"n1","underlay_ip":"192.0.2.1","datapath_id":7,"tunnel_ports":{"n2":9}}"#,
            ),
            (
                NETWORKS,
                r#"{"namespace":"ns","name":"a"}"#,
                r#"{"key":{"namespace":"ns","name":"a"},"segment":3,"subnet":"10.1.0.0/24","gateway":"10.1.0.1","exclude":["10.1.0.128/25"],"mtu":1400,"allowed_namespaces":["*"]}"#,
            ),
            (
                ATTACHMENTS,
                r#"{"container_id":"c1","ifname":"net1"}"#,
                r#"{"id":{"container_id":"c1","ifname":"net1"},"network":{"namespace":"ns","name":"a"},"node":"n1","ofport":5,"mac":[2,0,0,0,0,1],"ips":["10.1.0.2"],"pod":{"namespace":"ns","name":"p","uid":"u"}}"#,
            ),
            (
                RESERVATIONS,
                r#"{"container_id":"c1","ifname":"net1"}"#,
                r#"{"network":{"namespace":"ns","name":"a"},"node":"n1","pod":{"namespace":"ns","name":"p","uid":"u"},"mac":[2,0,0,0,0,1],"ips":["10.1.0.2/24"]}"#,
            ),
        ];
        {
            let db = Database::create(&path).unwrap();
            let tx = db.begin_write().unwrap();
            for (def, k, v) in rows {
                tx.open_table(def).unwrap().insert(k, v.as_bytes()).unwrap();
            }
            tx.commit().unwrap();
        }
        let (m, _) = RedbStore::open(&path).unwrap().load().unwrap();
        let net = &m.networks[&NetworkKey::new("ns", "a")];
        assert_eq!(net.segment, 3);
        // Written before port security was configurable: those networks ran Strict.
        assert_eq!(net.port_security, weft_api::PortSecurity::Strict);
        let spec = net.spec();
        assert_eq!(spec.subnet.as_deref(), Some("10.1.0.0/24"));
        assert_eq!(spec.exclude_ips, ["10.1.0.128/25"]);
        assert_eq!(
            (spec.mtu, spec.allowed_namespaces),
            (Some(1400), vec!["*".into()])
        );
        assert_eq!(m.nodes["n1"].tunnel_ports["n2"], 9);
        let id = AttachmentId {
            container_id: "c1".into(),
            ifname: "net1".into(),
        };
        assert_eq!(m.attachments[&id].ofport, 5);
        assert_eq!(m.reservations[&id].ips[0].to_string(), "10.1.0.2/24");
    }

    #[test]
    fn a_corrupt_record_is_a_clear_error() {
        let dir = TempDir::new("corrupt");
        let path = dir.0.join("state.redb");
        {
            let db = Database::create(&path).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(NODES)
                .unwrap()
                .insert("\"n1\"", b"{not json".as_slice())
                .unwrap();
            tx.commit().unwrap();
        }
        let err = RedbStore::open(&path).unwrap().load().unwrap_err();
        assert!(matches!(err, PersistError::Decode(_)), "{err}");
    }
}
