//! The audit reads and retention on postgres: bind, run, map.

use async_trait::async_trait;

use super::PgStore;
use crate::store::audit::*;

#[async_trait]
impl AuditStore for PgStore {}
