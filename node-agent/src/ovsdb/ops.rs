//! Typed `transact` operations (RFC 7047 section 5.2) and their results.

use super::Error;
use super::value::{Row, Uuid, Value, row_from_json, row_to_json};
use serde_json::{Map, Value as Json, json};
use std::time::Duration;

/// A condition function (`==`, `includes`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Includes,
    Excludes,
}

impl Function {
    fn as_str(self) -> &'static str {
        match self {
            Function::Eq => "==",
            Function::Ne => "!=",
            Function::Lt => "<",
            Function::Le => "<=",
            Function::Gt => ">",
            Function::Ge => ">=",
            Function::Includes => "includes",
            Function::Excludes => "excludes",
        }
    }
}

/// `[column, function, value]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub column: String,
    pub function: Function,
    pub value: Value,
}

impl Condition {
    pub fn new(column: &str, function: Function, value: impl Into<Value>) -> Self {
        Condition {
            column: column.to_string(),
            function,
            value: value.into(),
        }
    }

    pub fn eq(column: &str, value: impl Into<Value>) -> Self {
        Self::new(column, Function::Eq, value)
    }

    /// Matches the row with this UUID.
    pub fn uuid(uuid: &Uuid) -> Self {
        Self::eq("_uuid", Value::uuid(uuid.clone()))
    }

    /// Matches the row inserted earlier in the same transaction with `uuid-name` `name`.
    pub fn named_uuid(name: &str) -> Self {
        Self::eq("_uuid", Value::named_uuid(name))
    }

    fn to_json(&self) -> Json {
        json!([self.column, self.function.as_str(), self.value.to_json()])
    }
}

/// A mutator (`+=`, `insert`, `delete`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutator {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Insert,
    Delete,
}

impl Mutator {
    fn as_str(self) -> &'static str {
        match self {
            Mutator::Add => "+=",
            Mutator::Sub => "-=",
            Mutator::Mul => "*=",
            Mutator::Div => "/=",
            Mutator::Mod => "%=",
            Mutator::Insert => "insert",
            Mutator::Delete => "delete",
        }
    }
}

/// `[column, mutator, value]`. `insert`/`delete` change a set or map in place, which is what keeps
/// adding a port to a big bridge cheap (no rewrite of the whole `ports` set).
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    pub column: String,
    pub mutator: Mutator,
    pub value: Value,
}

impl Mutation {
    pub fn new(column: &str, mutator: Mutator, value: impl Into<Value>) -> Self {
        Mutation {
            column: column.to_string(),
            mutator,
            value: value.into(),
        }
    }

    pub fn insert(column: &str, value: impl Into<Value>) -> Self {
        Self::new(column, Mutator::Insert, value)
    }

    pub fn delete(column: &str, value: impl Into<Value>) -> Self {
        Self::new(column, Mutator::Delete, value)
    }

    fn to_json(&self) -> Json {
        json!([self.column, self.mutator.as_str(), self.value.to_json()])
    }
}

/// What a `wait` waits for: the selected rows' columns to equal (or differ from) `rows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitUntil {
    Equal,
    NotEqual,
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    Insert {
        table: String,
        row: Row,
        /// Lets later operations refer to this row as `["named-uuid", name]`.
        uuid_name: Option<String>,
    },
    Select {
        table: String,
        conditions: Vec<Condition>,
        columns: Option<Vec<String>>,
    },
    Update {
        table: String,
        conditions: Vec<Condition>,
        row: Row,
    },
    Mutate {
        table: String,
        conditions: Vec<Condition>,
        mutations: Vec<Mutation>,
    },
    Delete {
        table: String,
        conditions: Vec<Condition>,
    },
    /// Aborts the whole transaction unless the condition holds (after `timeout`, if given; `None`
    /// or zero checks once). This is how a transaction asserts "nothing changed since I looked".
    Wait {
        table: String,
        conditions: Vec<Condition>,
        columns: Vec<String>,
        until: WaitUntil,
        rows: Vec<Row>,
        timeout: Option<Duration>,
    },
    /// Stored in the database log, useful to tell who changed what.
    Comment(String),
}

impl Operation {
    pub fn insert(table: &str, row: Row, uuid_name: Option<&str>) -> Self {
        Operation::Insert {
            table: table.to_string(),
            row,
            uuid_name: uuid_name.map(str::to_string),
        }
    }

    pub fn select(table: &str, conditions: Vec<Condition>, columns: Option<&[&str]>) -> Self {
        Operation::Select {
            table: table.to_string(),
            conditions,
            columns: columns.map(|c| c.iter().map(|s| s.to_string()).collect()),
        }
    }

    pub fn update(table: &str, conditions: Vec<Condition>, row: Row) -> Self {
        Operation::Update {
            table: table.to_string(),
            conditions,
            row,
        }
    }

    pub fn mutate(table: &str, conditions: Vec<Condition>, mutations: Vec<Mutation>) -> Self {
        Operation::Mutate {
            table: table.to_string(),
            conditions,
            mutations,
        }
    }

    pub fn delete(table: &str, conditions: Vec<Condition>) -> Self {
        Operation::Delete {
            table: table.to_string(),
            conditions,
        }
    }

    /// A `wait` on the given columns of the rows matching `conditions`.
    pub fn wait(
        table: &str,
        conditions: Vec<Condition>,
        until: WaitUntil,
        rows: Vec<Row>,
        timeout: Option<Duration>,
    ) -> Self {
        let mut columns: Vec<String> = rows
            .iter()
            .flat_map(|r| r.keys().cloned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if columns.is_empty() {
            columns.push("_uuid".to_string());
        }
        Operation::Wait {
            table: table.to_string(),
            conditions,
            columns,
            until,
            rows,
            timeout,
        }
    }

    pub fn comment(text: &str) -> Self {
        Operation::Comment(text.to_string())
    }

    /// The RFC 7047 `op` name, used in error messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Operation::Insert { .. } => "insert",
            Operation::Select { .. } => "select",
            Operation::Update { .. } => "update",
            Operation::Mutate { .. } => "mutate",
            Operation::Delete { .. } => "delete",
            Operation::Wait { .. } => "wait",
            Operation::Comment(_) => "comment",
        }
    }

    pub(crate) fn to_json(&self) -> Json {
        let mut o = Map::new();
        o.insert("op".into(), json!(self.name()));
        let where_ = |c: &[Condition]| Json::Array(c.iter().map(Condition::to_json).collect());
        match self {
            Operation::Insert {
                table,
                row,
                uuid_name,
            } => {
                o.insert("table".into(), json!(table));
                o.insert("row".into(), row_to_json(row));
                if let Some(n) = uuid_name {
                    o.insert("uuid-name".into(), json!(n));
                }
            }
            Operation::Select {
                table,
                conditions,
                columns,
            } => {
                o.insert("table".into(), json!(table));
                o.insert("where".into(), where_(conditions));
                if let Some(c) = columns {
                    o.insert("columns".into(), json!(c));
                }
            }
            Operation::Update {
                table,
                conditions,
                row,
            } => {
                o.insert("table".into(), json!(table));
                o.insert("where".into(), where_(conditions));
                o.insert("row".into(), row_to_json(row));
            }
            Operation::Mutate {
                table,
                conditions,
                mutations,
            } => {
                o.insert("table".into(), json!(table));
                o.insert("where".into(), where_(conditions));
                o.insert(
                    "mutations".into(),
                    Json::Array(mutations.iter().map(Mutation::to_json).collect()),
                );
            }
            Operation::Delete { table, conditions } => {
                o.insert("table".into(), json!(table));
                o.insert("where".into(), where_(conditions));
            }
            Operation::Wait {
                table,
                conditions,
                columns,
                until,
                rows,
                timeout,
            } => {
                o.insert("table".into(), json!(table));
                o.insert("where".into(), where_(conditions));
                o.insert("columns".into(), json!(columns));
                let until = match until {
                    WaitUntil::Equal => "==",
                    WaitUntil::NotEqual => "!=",
                };
                o.insert("until".into(), json!(until));
                o.insert(
                    "rows".into(),
                    Json::Array(rows.iter().map(row_to_json).collect()),
                );
                if let Some(t) = timeout {
                    let ms = u64::try_from(t.as_millis()).unwrap_or(u64::MAX);
                    o.insert("timeout".into(), json!(ms));
                }
            }
            Operation::Comment(text) => {
                o.insert("comment".into(), json!(text));
            }
        }
        Json::Object(o)
    }
}

/// The result of one successful operation; which fields are set depends on the operation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperationResult {
    /// `insert`: the new row's UUID.
    pub uuid: Option<Uuid>,
    /// `select`: the matching rows.
    pub rows: Option<Vec<Row>>,
    /// `update`, `mutate`, `delete`: how many rows matched.
    pub count: Option<u64>,
}

/// The rows operation `i` of a transaction selected (none when it selected nothing or was no
/// `select`).
pub fn selected(res: &[OperationResult], i: usize) -> &[Row] {
    res.get(i)
        .and_then(|r| r.rows.as_deref())
        .unwrap_or_default()
}

/// Turns a `transact` reply into per-operation results, or the first failure as
/// [`Error::OperationFailed`] (for a failing operation, with its index and name) or
/// [`Error::CommitFailed`] (the extra trailing error when the commit itself failed).
pub(crate) fn parse_transact_result(
    ops: &[Operation],
    result: &Json,
) -> Result<Vec<OperationResult>, Error> {
    let items = result
        .as_array()
        .ok_or_else(|| Error::UnexpectedReply(format!("transact result not an array: {result}")))?;
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        if let Some(err) = item.get("error") {
            let error = err.as_str().unwrap_or("unknown error").to_string();
            let details = item
                .get("details")
                .and_then(Json::as_str)
                .map(str::to_string);
            return Err(match ops.get(index) {
                Some(op) => Error::OperationFailed {
                    index,
                    op: op.name(),
                    error,
                    details,
                },
                None => Error::CommitFailed { error, details },
            });
        }
        out.push(parse_one(item)?);
    }
    if out.len() < ops.len() {
        return Err(Error::UnexpectedReply(format!(
            "{} results for {} operations",
            out.len(),
            ops.len()
        )));
    }
    Ok(out)
}

fn parse_one(item: &Json) -> Result<OperationResult, Error> {
    let mut r = OperationResult::default();
    if item.is_null() {
        return Ok(r);
    }
    if let Some(u) = item.get("uuid") {
        r.uuid = Value::from_json(u)?.as_uuid().cloned();
    }
    if let Some(rows) = item.get("rows") {
        let rows = rows
            .as_array()
            .ok_or_else(|| Error::UnexpectedReply(format!("rows not an array: {rows}")))?;
        r.rows = Some(rows.iter().map(row_from_json).collect::<Result<_, _>>()?);
    }
    r.count = item.get("count").and_then(Json::as_u64);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovsdb::value::row;

    #[test]
    fn operations_encode_as_rfc7047() {
        let op = Operation::insert("Port", row([("name", "p0")]), Some("newport"));
        assert_eq!(
            op.to_json(),
            json!({"op":"insert","table":"Port","row":{"name":"p0"},"uuid-name":"newport"})
        );
        let op = Operation::wait(
            "Bridge",
            vec![Condition::eq("name", "br0")],
            WaitUntil::NotEqual,
            vec![row([("fail_mode", "secure")])],
            Some(Duration::from_millis(250)),
        );
        assert_eq!(
            op.to_json(),
            json!({"op":"wait","table":"Bridge","where":[["name","==","br0"]],
                   "columns":["fail_mode"],"until":"!=","rows":[{"fail_mode":"secure"}],"timeout":250})
        );
        let op = Operation::mutate(
            "Bridge",
            vec![],
            vec![Mutation::insert("ports", Value::named_uuid("newport"))],
        );
        assert_eq!(
            op.to_json()["mutations"],
            json!([["ports", "insert", ["named-uuid", "newport"]]])
        );
    }

    #[test]
    fn failed_operation_becomes_typed_error() {
        let ops = [Operation::comment("a"), Operation::comment("b")];
        let res = json!([{}, {"error":"timed out","details":"wait"}]);
        match parse_transact_result(&ops, &res) {
            Err(Error::OperationFailed {
                index, op, error, ..
            }) => {
                assert_eq!((index, op, error.as_str()), (1, "comment", "timed out"));
            }
            other => panic!("{other:?}"),
        }
        let res = json!([{}, {}, {"error":"constraint violation"}]);
        assert!(matches!(
            parse_transact_result(&ops, &res),
            Err(Error::CommitFailed { .. })
        ));
        assert!(parse_transact_result(&ops, &json!([{}])).is_err());
        assert!(parse_transact_result(&ops, &json!({"x":1})).is_err());
    }
}
