//! `monitor` requests and the table updates they produce (RFC 7047 sections 4.1.5, 4.1.6).

use super::Error;
use super::value::{Row, Uuid, row_from_json};
use serde_json::{Map, Value as Json, json};
use std::collections::BTreeMap;

/// What to monitor in one table.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorRequest {
    pub table: String,
    /// `None` means all columns.
    pub columns: Option<Vec<String>>,
    pub initial: bool,
    pub insert: bool,
    pub delete: bool,
    pub modify: bool,
}

impl MonitorRequest {
    /// All changes (and the initial contents) of `columns` in `table`.
    pub fn new(table: &str, columns: &[&str]) -> Self {
        MonitorRequest {
            table: table.to_string(),
            columns: Some(columns.iter().map(|c| c.to_string()).collect()),
            initial: true,
            insert: true,
            delete: true,
            modify: true,
        }
    }
}

/// The third `monitor` parameter: `{table: {columns, select}}`.
pub(crate) fn requests_to_json(requests: &[MonitorRequest]) -> Json {
    let mut tables = Map::new();
    for r in requests {
        let mut o = Map::new();
        if let Some(c) = &r.columns {
            o.insert("columns".into(), json!(c));
        }
        o.insert(
            "select".into(),
            json!({"initial": r.initial, "insert": r.insert, "delete": r.delete, "modify": r.modify}),
        );
        let entry = tables
            .entry(r.table.clone())
            .or_insert_with(|| Json::Array(Vec::new()));
        if let Json::Array(list) = entry {
            list.push(Json::Object(o));
        }
    }
    Json::Object(tables)
}

/// One row's change: `old` absent for inserts (and the initial dump), `new` absent for deletes.
/// For a modify, `old` holds only the columns that changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowUpdate {
    pub old: Option<Row>,
    pub new: Option<Row>,
}

/// table -> row UUID -> change.
pub type TableUpdates = BTreeMap<String, BTreeMap<Uuid, RowUpdate>>;

pub(crate) fn parse_table_updates(j: &Json) -> Result<TableUpdates, Error> {
    let bad = || Error::UnexpectedReply(format!("malformed table-updates: {j}"));
    let tables = j.as_object().ok_or_else(bad)?;
    let mut out = TableUpdates::new();
    for (table, rows) in tables {
        let rows = rows.as_object().ok_or_else(bad)?;
        let mut parsed = BTreeMap::new();
        for (uuid, change) in rows {
            let change = change.as_object().ok_or_else(bad)?;
            let part = |k: &str| change.get(k).map(row_from_json).transpose();
            parsed.insert(
                Uuid::parse(uuid)?,
                RowUpdate {
                    old: part("old")?,
                    new: part("new")?,
                },
            );
        }
        out.insert(table.clone(), parsed);
    }
    Ok(out)
}

/// A notification from a connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Full contents of a monitor, on first issue and again after every reconnect: replaces
    /// whatever the consumer knew about these tables.
    Initial {
        monitor_id: String,
        updates: TableUpdates,
    },
    /// An `update` notification.
    Update {
        monitor_id: String,
        updates: TableUpdates,
    },
    /// The session to the server was (re-)established; monitors follow as `Initial`.
    Connected,
    /// The session was lost; the client retries with backoff.
    Disconnected { reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_updates_and_rejects_garbage() {
        let j = json!({"Interface": {"0f8a4c47-8bc8-4d6e-9b1c-3b2d5c8e1a77":
            {"old": {"ofport": ["set", []]}, "new": {"name": "p0", "ofport": 3}}}});
        let u = parse_table_updates(&j).unwrap();
        let (uuid, change) = u["Interface"].iter().next().unwrap();
        assert_eq!(uuid.as_str(), "0f8a4c47-8bc8-4d6e-9b1c-3b2d5c8e1a77");
        assert_eq!(change.new.as_ref().unwrap()["ofport"].as_integer(), Some(3));
        assert_eq!(change.old.as_ref().unwrap()["ofport"].as_integer(), None);
        assert!(parse_table_updates(&json!({"T": {"not-a-uuid": {}}})).is_err());
        assert!(parse_table_updates(&json!([1])).is_err());
    }

    #[test]
    fn requests_group_by_table() {
        let j = requests_to_json(&[MonitorRequest::new("Interface", &["name", "ofport"])]);
        assert_eq!(j["Interface"][0]["columns"], json!(["name", "ofport"]));
        assert_eq!(j["Interface"][0]["select"]["initial"], json!(true));
    }
}
