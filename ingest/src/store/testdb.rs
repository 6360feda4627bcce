//! The store's tests run once on each database: [`on_both!`] turns each test function into a
//! `sqlite::name` and a `postgres::name` test, each on a fresh, empty database.

use super::{Database, NodeClaim, Store};

/// A fresh database of one kind; [`TestDb::open`] connects to it again (as another process or
/// node would).
pub struct TestDb {
    database: Database,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        TestDb {
            database: Database::Sqlite(dir.path().join("boltstream.db")),
            _dir: Some(dir),
        }
    }

    pub fn postgres() -> Self {
        TestDb {
            database: Database::Postgres(crate::pg_cluster::shared().new_database()),
            _dir: None,
        }
    }

    pub fn open(&self) -> Store {
        Store::open_database(&self.database).unwrap()
    }

    pub fn database(&self) -> &Database {
        &self.database
    }
}

/// A node's claim for tests, with a lease of `lease_ms`.
pub fn node(id: &str, lease_ms: i64) -> NodeClaim {
    NodeClaim {
        node_id: id.to_string(),
        url: format!("http://{id}.invalid:8080"),
        lease_ms,
    }
}

/// `fn name(db: &TestDb) { … }` items, each run as a test on SQLite and on PostgreSQL.
macro_rules! on_both {
    ($(fn $name:ident($db:ident: &TestDb) $body:block)*) => {
        $(fn $name($db: &$crate::store::testdb::TestDb) $body)*
        mod sqlite {
            $(#[test]
            fn $name() {
                super::$name(&$crate::store::testdb::TestDb::sqlite())
            })*
        }
        mod postgres {
            $(#[test]
            fn $name() {
                super::$name(&$crate::store::testdb::TestDb::postgres())
            })*
        }
    };
}
pub(crate) use on_both;
