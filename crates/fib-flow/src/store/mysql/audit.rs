//! The audit reads and retention on mysql: bind, run, map.

use async_trait::async_trait;

use super::MySqlStore;
use crate::store::audit::*;

#[async_trait]
impl AuditStore for MySqlStore {}
