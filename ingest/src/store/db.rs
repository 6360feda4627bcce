//! The two databases a [`super::Store`] runs on: SQLite (one file beside the node, the default)
//! and PostgreSQL (one database every node of a site shares). Every query is written once, in SQL
//! both accept — `?N` placeholders (rewritten to `$N` for PostgreSQL), `TRUE`/`FALSE`, `NOT flag`,
//! `ON CONFLICT`, `RETURNING` — so a rule such as "one live publisher per key" is one statement,
//! never two dialects that can drift. Only the schemas and their migrations differ.
//!
//! Both drivers are blocking, like the store's interface: async callers already run store calls on
//! `spawn_blocking`. `postgres` (rust-postgres) rather than an async driver for that reason: an
//! async pool would need a second way into every one of the store's callers for no gain here.

use std::collections::HashMap;
use std::error::Error;

use bytes::BytesMut;
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};

use super::StoreError;

/// A bound parameter, as both drivers take it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Value<'a> {
    Int(i64),
    Bool(bool),
    Text(&'a str),
    Real(f64),
    Blob(&'a [u8]),
    Null,
}

macro_rules! value_from {
    ($($t:ty => $v:ident $(as $cast:ty)?),* $(,)?) => {$(
        impl From<$t> for Value<'_> {
            fn from(v: $t) -> Self {
                Value::$v(v $(as $cast)?)
            }
        }
    )*};
}
value_from!(i64 => Int, i32 => Int as i64, u32 => Int as i64, u8 => Int as i64, bool => Bool, f64 => Real);

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Text(v)
    }
}
impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Value::Text(v)
    }
}
impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(v: &'a [u8]) -> Self {
        Value::Blob(v)
    }
}
impl<'a> From<&'a Vec<u8>> for Value<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Value::Blob(v)
    }
}
impl From<Option<i64>> for Value<'_> {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Value::Null, Value::Int)
    }
}

/// `args![a, b]`: a query's parameters, in `?1, ?2` order.
macro_rules! args {
    ($($v:expr),* $(,)?) => {
        &[$($crate::store::db::Value::from($v)),*][..]
    };
}
pub(crate) use args;

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Int(v) => ValueRef::Integer(v),
            Value::Bool(b) => ValueRef::Integer(i64::from(b)),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Real(f) => ValueRef::Real(f),
            Value::Blob(b) => ValueRef::Blob(b),
            Value::Null => ValueRef::Null,
        }))
    }
}

impl ToSql for Value<'_> {
    /// Converts to the type PostgreSQL inferred for the parameter, so a query's integer
    /// parameter may stand where the server expects a smaller integer.
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match *self {
            Value::Int(v) => match *ty {
                Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
                Type::FLOAT8 => (v as f64).to_sql(ty, out),
                Type::BOOL => (v != 0).to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            Value::Bool(b) => match *ty {
                Type::INT8 => i64::from(b).to_sql(ty, out),
                _ => b.to_sql(ty, out),
            },
            Value::Text(s) => s.to_sql(ty, out),
            Value::Real(f) => f.to_sql(ty, out),
            Value::Blob(b) => b.to_sql(ty, out),
            Value::Null => Ok(IsNull::Yes),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// One result row of either database.
pub(crate) enum Row<'a> {
    Lite(&'a rusqlite::Row<'a>),
    Pg(&'a postgres::Row),
}

impl Row<'_> {
    /// Column `i` as `T`.
    pub fn get<T: Column>(&self, i: usize) -> Result<T, StoreError> {
        match self {
            Row::Lite(r) => Ok(T::lite(r, i)?),
            Row::Pg(r) => T::pg(r, i),
        }
    }
}

/// A Rust type a column is read as.
pub(crate) trait Column: Sized {
    fn lite(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self>;
    fn pg(r: &postgres::Row, i: usize) -> Result<Self, StoreError>;
}

/// An integer column of any width (PostgreSQL types `COUNT(*)` and literals unlike columns).
fn pg_int(r: &postgres::Row, i: usize) -> Result<Option<i64>, StoreError> {
    Ok(match *r.columns()[i].type_() {
        Type::INT4 => r.try_get::<_, Option<i32>>(i)?.map(i64::from),
        Type::INT2 => r.try_get::<_, Option<i16>>(i)?.map(i64::from),
        Type::BOOL => r.try_get::<_, Option<bool>>(i)?.map(i64::from),
        _ => r.try_get::<_, Option<i64>>(i)?,
    })
}

fn not_null<T>(v: Option<T>, i: usize) -> Result<T, StoreError> {
    v.ok_or_else(|| StoreError::Column(format!("column {i} is NULL")))
}

impl Column for i64 {
    fn lite(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
        r.get(i)
    }
    fn pg(r: &postgres::Row, i: usize) -> Result<Self, StoreError> {
        not_null(pg_int(r, i)?, i)
    }
}

impl Column for Option<i64> {
    fn lite(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
        r.get(i)
    }
    fn pg(r: &postgres::Row, i: usize) -> Result<Self, StoreError> {
        pg_int(r, i)
    }
}

macro_rules! narrow_int {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn lite(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
                r.get(i)
            }
            fn pg(r: &postgres::Row, i: usize) -> Result<Self, StoreError> {
                let v = i64::pg(r, i)?;
                <$t>::try_from(v).map_err(|_| StoreError::Column(format!("column {i}: {v} out of range")))
            }
        }
    )*};
}
narrow_int!(u32, u8);

impl Column for bool {
    fn lite(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
        r.get(i)
    }
    fn pg(r: &postgres::Row, i: usize) -> Result<Self, StoreError> {
        Ok(i64::pg(r, i)? != 0)
    }
}

impl Column for f64 {
    fn lite(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
        r.get(i)
    }
    fn pg(r: &postgres::Row, i: usize) -> Result<Self, StoreError> {
        match *r.columns()[i].type_() {
            Type::FLOAT8 => Ok(r.try_get(i)?),
            Type::FLOAT4 => Ok(f64::from(r.try_get::<_, f32>(i)?)),
            _ => Ok(i64::pg(r, i)? as f64),
        }
    }
}

macro_rules! same_type {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn lite(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
                r.get(i)
            }
            fn pg(r: &postgres::Row, i: usize) -> Result<Self, StoreError> {
                Ok(r.try_get(i)?)
            }
        }
    )*};
}
same_type!(String, Option<String>, Vec<u8>, Option<Vec<u8>>);

/// A PostgreSQL session with its prepared statements, kept per connection: each node's store
/// queries run many times a second, and preparing is a round trip of its own.
pub(crate) struct PgConn {
    client: postgres::Client,
    config: postgres::Config,
    statements: HashMap<String, postgres::Statement>,
    in_transaction: bool,
    /// When connecting again last failed: calls within [`RECONNECT_BACKOFF`] of it fail at once
    /// rather than each wait for a connect timeout while holding the store.
    failed_at: Option<std::time::Instant>,
}

/// How long after a failed reconnect store calls fail without trying again.
const RECONNECT_BACKOFF: std::time::Duration = std::time::Duration::from_secs(1);

/// At most this many distinct statements are kept prepared (the store has about a hundred).
const STATEMENT_CACHE: usize = 512;

impl PgConn {
    pub fn connect(config: postgres::Config) -> Result<Self, StoreError> {
        let client = config.connect(postgres::NoTls)?;
        Ok(Self {
            client,
            config,
            statements: HashMap::new(),
            in_transaction: false,
            failed_at: None,
        })
    }

    /// Makes the session usable again after a panic mid-transaction or a lost connection (the
    /// server restarted): the next query then works instead of every later one failing.
    pub fn recover(&mut self) -> Result<(), StoreError> {
        if self.client.is_closed() {
            if (self.failed_at).is_some_and(|at| at.elapsed() < RECONNECT_BACKOFF) {
                return Err(StoreError::Unavailable);
            }
            self.client = self.config.connect(postgres::NoTls).inspect_err(|_| {
                self.failed_at = Some(std::time::Instant::now());
            })?;
            self.failed_at = None;
            self.statements.clear();
            self.in_transaction = false;
        }
        if self.in_transaction {
            self.client.batch_execute("ROLLBACK")?;
            self.in_transaction = false;
        }
        Ok(())
    }

    pub fn client(&mut self) -> &mut postgres::Client {
        &mut self.client
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, StoreError> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(&dollar_placeholders(sql))?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), st.clone());
        Ok(st)
    }
}

/// `?N` → `$N`, outside string literals.
fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => quoted = !quoted,
            '?' if !quoted && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('$');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// A connection to either database, lent to one store call.
pub(crate) enum Conn<'a> {
    Lite(&'a mut rusqlite::Connection),
    Pg(&'a mut PgConn),
}

impl Conn<'_> {
    /// Runs a statement; the number of rows it changed.
    pub fn execute(&mut self, sql: &str, args: &[Value<'_>]) -> Result<u64, StoreError> {
        match self {
            Conn::Lite(c) => {
                let n = c
                    .prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(args))?;
                Ok(n as u64)
            }
            Conn::Pg(p) => {
                let st = p.statement(sql)?;
                Ok(p.client.execute(&st, &pg_args(args))?)
            }
        }
    }

    /// Every row, each through `f`.
    pub fn query<T>(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        match self {
            Conn::Lite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Lite(r))?);
                }
            }
            Conn::Pg(p) => {
                let st = p.statement(sql)?;
                for r in p.client.query(&st, &pg_args(args))? {
                    out.push(f(&Row::Pg(&r))?);
                }
            }
        }
        Ok(out)
    }

    /// The first row, if any.
    pub fn query_opt<T>(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut f = Some(f);
        let mut rows = self.query(sql, args, |r| match f.take() {
            Some(f) => f(r).map(Some),
            None => Ok(None),
        })?;
        Ok(if rows.is_empty() {
            None
        } else {
            rows.swap_remove(0)
        })
    }

    /// The first row, which must exist (aggregates, `RETURNING`).
    pub fn query_one<T>(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.query_opt(sql, args, f)?
            .ok_or_else(|| StoreError::Column("the query returned no row".into()))
    }

    /// One `i64` from the first row.
    pub fn query_i64(&mut self, sql: &str, args: &[Value<'_>]) -> Result<i64, StoreError> {
        self.query_one(sql, args, |r| r.get(0))
    }

    /// Runs `f` in a transaction that takes the write lock at once (SQLite `IMMEDIATE`), so two
    /// writers never deadlock upgrading read locks; rolled back when `f` fails.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.batch(match self {
            Conn::Lite(_) => "BEGIN IMMEDIATE",
            Conn::Pg(_) => "BEGIN",
        })?;
        if let Conn::Pg(p) = self {
            p.in_transaction = true;
        }
        let result = f(self).and_then(|v| self.batch("COMMIT").map(|()| v));
        if result.is_err() {
            let _ = self.batch("ROLLBACK");
        }
        if let Conn::Pg(p) = self {
            p.in_transaction = false;
        }
        result
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        match self {
            Conn::Lite(c) => Ok(c.execute_batch(sql)?),
            Conn::Pg(p) => Ok(p.client.batch_execute(sql)?),
        }
    }
}

fn pg_args<'a>(args: &'a [Value<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    args.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

#[cfg(test)]
mod tests {
    use super::dollar_placeholders;

    #[test]
    fn placeholders_become_dollars_outside_literals() {
        assert_eq!(
            dollar_placeholders("SELECT '?1', x FROM t WHERE a = ?1 AND b = ?12 AND c = ?"),
            "SELECT '?1', x FROM t WHERE a = $1 AND b = $12 AND c = ?"
        );
    }
}
