//! Versioned schema migrations, embedded in the binary and tracked in our own
//! `fib_flow_migrations` table (not sqlx's `_sqlx_migrations`, which would
//! collide with the host application's own migrations).
//!
//! Every backend ships the same version numbers and names in
//! `migrations/<backend>/NNNN_name.sql`; a test keeps the lists equal.

use crate::error::{Error, Result};

/// One embedded migration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Version number (the file's `NNNN` prefix).
    pub version: i64,
    /// The file's name without the prefix and extension.
    pub name: &'static str,
    /// The SQL to run (may hold several statements).
    pub sql: &'static str,
}

/// SQLite's migrations, in version order.
#[cfg(feature = "sqlite")]
pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "audit",
        sql: include_str!("../../migrations/sqlite/0002_audit.sql"),
    },
    Migration {
        version: 3,
        name: "workers",
        sql: include_str!("../../migrations/sqlite/0003_workers.sql"),
    },
    Migration {
        version: 4,
        name: "submit_procedure",
        sql: include_str!("../../migrations/sqlite/0004_submit_procedure.sql"),
    },
];

/// PostgreSQL's migrations, in version order.
#[cfg(feature = "postgres")]
pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "audit",
        sql: include_str!("../../migrations/postgres/0002_audit.sql"),
    },
    Migration {
        version: 3,
        name: "workers",
        sql: include_str!("../../migrations/postgres/0003_workers.sql"),
    },
    Migration {
        version: 4,
        name: "submit_procedure",
        sql: include_str!("../../migrations/postgres/0004_submit_procedure.sql"),
    },
];

/// MySQL's migrations, in version order.
#[cfg(feature = "mysql")]
pub const MYSQL: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../../migrations/mysql/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "audit",
        sql: include_str!("../../migrations/mysql/0002_audit.sql"),
    },
    Migration {
        version: 3,
        name: "workers",
        sql: include_str!("../../migrations/mysql/0003_workers.sql"),
    },
    Migration {
        version: 4,
        name: "submit_procedure",
        sql: include_str!("../../migrations/mysql/0004_submit_procedure.sql"),
    },
];

/// The migrations still to apply, given the versions already recorded.
/// A recorded version this build does not know means the database was
/// migrated by a newer build: [`Error::SchemaTooNew`].
pub fn pending(all: &'static [Migration], applied: &[i64]) -> Result<Vec<Migration>> {
    let known = all.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(&found) = applied.iter().max() {
        if found > known {
            return Err(Error::SchemaTooNew { found, known });
        }
    }
    Ok(all
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .copied()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &[Migration] = &[
        Migration {
            version: 1,
            name: "a",
            sql: "",
        },
        Migration {
            version: 2,
            name: "b",
            sql: "",
        },
    ];

    #[test]
    fn pending_skips_applied_versions() {
        let versions = |ms: Vec<Migration>| ms.iter().map(|m| m.version).collect::<Vec<_>>();
        assert_eq!(versions(pending(TWO, &[]).unwrap()), [1, 2]);
        assert_eq!(versions(pending(TWO, &[1]).unwrap()), [2]);
        assert!(pending(TWO, &[1, 2]).unwrap().is_empty());
    }

    #[test]
    fn a_newer_database_is_refused() {
        assert!(matches!(
            pending(TWO, &[1, 2, 3]),
            Err(Error::SchemaTooNew { found: 3, known: 2 })
        ));
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_versions_are_ascending_and_unique() {
        let versions: Vec<_> = SQLITE.iter().map(|m| m.version).collect();
        let mut sorted = versions.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(versions, sorted);
    }
}
