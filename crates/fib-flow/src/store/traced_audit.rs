//! Tracing spans for the audit reads (see `traced`).

use async_trait::async_trait;

use super::audit::*;
use super::traced::Traced;

#[async_trait]
impl AuditStore for Traced {}
