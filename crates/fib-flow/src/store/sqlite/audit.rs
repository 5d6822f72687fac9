//! The audit reads and retention on sqlite: bind, run, map.

use async_trait::async_trait;

use super::SqliteStore;
use crate::store::audit::*;

#[async_trait]
impl AuditStore for SqliteStore {}
