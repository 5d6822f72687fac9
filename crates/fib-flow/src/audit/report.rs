//! What a handler writes into its task's history while it runs:
//! checkpoints ([`Checkpoint`], from [`Task::audit`](crate::Task::audit))
//! and progress reports ([`Progress`], from
//! [`Task::progress`](crate::Task::progress)).
//!
//! Both are fenced by the attempt's lease: once the attempt lost its task
//! (timed out, paused, cancelled, claimed again) they change nothing and
//! return [`Error::Lost`]. Both await directly (`task.audit("x").await?`)
//! or through `send()`.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use super::record::{self, HandlerNote};
use super::EventType;
use crate::config::MAX_NAME_LEN;
use crate::error::{Error, Result};
use crate::store::{Fence, Store, TaskTouchParams};
use crate::task::TaskId;

/// Where a handler's reports go: the store and the attempt's lease.
#[derive(Clone)]
pub(crate) struct Reporter {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) id: TaskId,
    pub(crate) fence: Fence,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("id", &self.id)
            .field("fence", &self.fence)
            .finish()
    }
}

impl Reporter {
    /// Writes one report in one transaction: the fenced touch of the task
    /// row, then its event.
    async fn write(&self, touch: TaskTouchParams, note: HandlerNote) -> Result<()> {
        crate::engine::retry_transient(|| self.try_write(&touch, &note)).await
    }

    async fn try_write(&self, touch: &TaskTouchParams, note: &HandlerNote) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let Some(task) = tx.task_touch(touch).await? else {
            return Err(Error::Lost {
                id: self.id,
                attempt: self.fence.attempt,
            });
        };
        let event = record::handler_note(&task, &self.fence, note.clone());
        let audit = record::AuditRows {
            events: vec![event],
            ..Default::default()
        };
        tx.audit_write(&audit).await?;
        tx.commit().await
    }
}

type Sending<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// Longest accepted checkpoint code, stage name or report text, in bytes.
pub const MAX_REPORT_TEXT_LEN: usize = 4096;

fn check_text(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty or whitespace"));
    }
    if value.len() > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {max} bytes (got {})", value.len()),
        ));
    }
    Ok(())
}

fn check_stage(stage: Option<i64>) -> Result<()> {
    match stage {
        Some(stage) if stage < 0 => Err(Error::invalid("stage", "must not be negative")),
        _ => Ok(()),
    }
}

/// Turns user metadata into a JSON object, or says why it is not one.
fn metadata_object<T: Serialize + ?Sized>(metadata: &T) -> Result<Map<String, Value>> {
    match serde_json::to_value(metadata) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(other) => Err(Error::invalid(
            "metadata",
            format!(
                "must serialize to a JSON object (got {})",
                json_kind(&other)
            ),
        )),
        Err(source) => Err(Error::Serialization {
            field: "metadata",
            source,
        }),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A checkpoint: a named point the handler reached, recorded as a
/// `task_checkpoint` event of the running attempt. Does not renew the
/// lease. Build it with [`Task::audit`](crate::Task::audit).
///
/// Rules (each a [`Error::InvalidInput`] naming the field, checked before
/// anything is written): `code` non-blank, at most 255 bytes; `message`
/// non-blank, at most [`MAX_REPORT_TEXT_LEN`] bytes; `metadata` serialises
/// to a JSON object (a value serde cannot serialise at all is
/// [`Error::Serialization`]); `stage` not negative.
#[must_use = "a checkpoint is written only when awaited"]
#[derive(Debug)]
pub struct Checkpoint<'a> {
    reporter: &'a Reporter,
    code: String,
    message: Option<String>,
    metadata: Result<Map<String, Value>>,
    stage: Option<i64>,
}

impl<'a> Checkpoint<'a> {
    pub(crate) fn new(reporter: &'a Reporter, code: String) -> Self {
        Checkpoint {
            reporter,
            code,
            message: None,
            metadata: Ok(Map::new()),
            stage: None,
        }
    }

    /// A human-readable line (defaults to the code).
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Details: anything that serialises to a JSON object. Its keys are
    /// stored beside `code` (`code` wins).
    pub fn metadata<T: Serialize + ?Sized>(mut self, metadata: &T) -> Self {
        self.metadata = metadata_object(metadata);
        self
    }

    /// The stage the checkpoint belongs to (defaults to the task's).
    pub fn stage(mut self, stage: i64) -> Self {
        self.stage = Some(stage);
        self
    }

    /// Checks the checkpoint and turns it into its event's content.
    fn into_note(self) -> Result<(&'a Reporter, HandlerNote)> {
        check_text("code", &self.code, MAX_NAME_LEN)?;
        if let Some(message) = &self.message {
            check_text("message", message, MAX_REPORT_TEXT_LEN)?;
        }
        check_stage(self.stage)?;
        let mut metadata = self.metadata?;
        metadata.insert("code".into(), Value::String(self.code.clone()));
        Ok((
            self.reporter,
            HandlerNote {
                event_type: EventType::TaskCheckpoint,
                message: self.message.unwrap_or(self.code),
                metadata,
                stage: self.stage,
            },
        ))
    }

    /// Writes the checkpoint. [`Error::Lost`] when the attempt no longer
    /// owns its task (nothing is written).
    pub async fn send(self) -> Result<()> {
        let (reporter, note) = self.into_note()?;
        let touch = TaskTouchParams {
            id: reporter.id.get(),
            fence: reporter.fence.clone(),
            heartbeat: false,
            stage_name: None,
            progress_text: None,
            progress_percent: None,
            event_type: EventType::TaskCheckpoint.as_str(),
        };
        reporter.write(touch, note).await
    }
}

impl<'a> IntoFuture for Checkpoint<'a> {
    type Output = Result<()>;
    type IntoFuture = Sending<'a>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// A progress report: updates the task's progress snapshot
/// (`current_stage_name`, `progress_text`, `progress_percent`), renews the
/// attempt's lease (it counts as a heartbeat), and is recorded as a
/// `task_progress` event. Build it with
/// [`Task::progress`](crate::Task::progress).
///
/// Rules (each a [`Error::InvalidInput`] naming the field, checked before
/// anything is written): at least one of a stage name, a text or a
/// percent; `percent` finite, 0 to 100; texts non-blank and at most
/// [`MAX_REPORT_TEXT_LEN`] bytes (the stage name at most 255); `metadata`
/// serialises to a JSON object.
#[must_use = "a progress report is written only when awaited"]
#[derive(Debug)]
pub struct Progress<'a> {
    reporter: &'a Reporter,
    stage_name: Option<String>,
    text: Option<String>,
    percent: Option<f64>,
    message: Option<String>,
    metadata: Result<Map<String, Value>>,
}

impl<'a> Progress<'a> {
    pub(crate) fn new(reporter: &'a Reporter) -> Self {
        Progress {
            reporter,
            stage_name: None,
            text: None,
            percent: None,
            message: None,
            metadata: Ok(Map::new()),
        }
    }

    /// The named step the handler is in (`"upload"`).
    pub fn stage(mut self, name: impl Into<String>) -> Self {
        self.stage_name = Some(name.into());
        self
    }

    /// A line describing where it is.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// How far it is, 0 to 100.
    pub fn percent(mut self, percent: f64) -> Self {
        self.percent = Some(percent);
        self
    }

    /// The event's line (defaults to the text, then the stage name).
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Details: anything that serialises to a JSON object; its keys win
    /// over the report's own (`stage_name`, `progress_text`,
    /// `progress_percent`) in the event's metadata.
    pub fn metadata<T: Serialize + ?Sized>(mut self, metadata: &T) -> Self {
        self.metadata = metadata_object(metadata);
        self
    }

    /// Checks the report and turns it into the row update and the event.
    fn into_parts(self) -> Result<(&'a Reporter, TaskTouchParams, HandlerNote)> {
        if self.stage_name.is_none() && self.text.is_none() && self.percent.is_none() {
            return Err(Error::invalid(
                "progress",
                "needs a stage name, a text or a percent",
            ));
        }
        if let Some(percent) = self.percent {
            if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
                return Err(Error::invalid(
                    "percent",
                    format!("must be a number from 0 to 100 (got {percent})"),
                ));
            }
        }
        if let Some(name) = &self.stage_name {
            check_text("stage", name, MAX_NAME_LEN)?;
        }
        if let Some(text) = &self.text {
            check_text("text", text, MAX_REPORT_TEXT_LEN)?;
        }
        if let Some(message) = &self.message {
            check_text("message", message, MAX_REPORT_TEXT_LEN)?;
        }
        let user = self.metadata?;
        let mut metadata = Map::new();
        if let Some(name) = &self.stage_name {
            metadata.insert("stage_name".into(), Value::from(name.as_str()));
        }
        if let Some(text) = &self.text {
            metadata.insert("progress_text".into(), Value::from(text.as_str()));
        }
        if let Some(percent) = self.percent {
            metadata.insert("progress_percent".into(), Value::from(percent));
        }
        metadata.extend(user);
        let message = self
            .message
            .or_else(|| self.text.clone())
            .or_else(|| self.stage_name.clone())
            .unwrap_or_else(|| "task progress updated".to_owned());
        let touch = TaskTouchParams {
            id: self.reporter.id.get(),
            fence: self.reporter.fence.clone(),
            heartbeat: true,
            stage_name: self.stage_name,
            progress_text: self.text,
            progress_percent: self.percent,
            event_type: EventType::TaskProgress.as_str(),
        };
        let note = HandlerNote {
            event_type: EventType::TaskProgress,
            message,
            metadata,
            stage: None,
        };
        Ok((self.reporter, touch, note))
    }

    /// Writes the report. [`Error::Lost`] when the attempt no longer owns
    /// its task (nothing is written).
    pub async fn send(self) -> Result<()> {
        let (reporter, touch, note) = self.into_parts()?;
        reporter.write(touch, note).await
    }
}

impl<'a> IntoFuture for Progress<'a> {
    type Output = Result<()>;
    type IntoFuture = Sending<'a>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn reporter() -> Reporter {
        let config = crate::Config::new("sqlite::memory:");
        Reporter {
            store: crate::store::connect(&config).await.unwrap(),
            id: TaskId(1),
            fence: Fence {
                worker_id: "w".into(),
                attempt: 1,
            },
        }
    }

    fn field_of(error: Error) -> &'static str {
        match error {
            Error::InvalidInput { field, .. } => field,
            other => panic!("not an input error: {other:?}"),
        }
    }

    #[tokio::test]
    async fn checkpoint_rules() {
        let r = reporter().await;
        let bad = |c: Checkpoint<'_>| field_of(c.into_note().unwrap_err());
        assert_eq!(bad(Checkpoint::new(&r, "  ".into())), "code");
        assert_eq!(bad(Checkpoint::new(&r, "x".repeat(256))), "code");
        assert_eq!(bad(Checkpoint::new(&r, "c".into()).message("")), "message");
        assert_eq!(
            bad(Checkpoint::new(&r, "c".into()).metadata(&[1, 2])),
            "metadata"
        );
        assert_eq!(
            bad(Checkpoint::new(&r, "c".into()).metadata("text")),
            "metadata"
        );
        assert_eq!(bad(Checkpoint::new(&r, "c".into()).stage(-1)), "stage");
        let (_, note) = Checkpoint::new(&r, "charged".into())
            .metadata(&json!({"amount": 3, "code": "theirs"}))
            .into_note()
            .unwrap();
        assert_eq!(note.message, "charged");
        assert_eq!(
            Value::Object(note.metadata),
            json!({"amount": 3, "code": "charged"})
        );
    }

    #[tokio::test]
    async fn progress_rules() {
        let r = reporter().await;
        let bad = |p: Progress<'_>| field_of(p.into_parts().unwrap_err());
        assert_eq!(bad(Progress::new(&r)), "progress");
        assert_eq!(bad(Progress::new(&r).message("m")), "progress");
        assert_eq!(bad(Progress::new(&r).percent(100.5)), "percent");
        assert_eq!(bad(Progress::new(&r).percent(-0.1)), "percent");
        assert_eq!(bad(Progress::new(&r).percent(f64::NAN)), "percent");
        assert_eq!(bad(Progress::new(&r).stage(" ")), "stage");
        assert_eq!(bad(Progress::new(&r).text("")), "text");
        assert_eq!(bad(Progress::new(&r).text("t").metadata(&5)), "metadata");
        let (_, touch, note) = Progress::new(&r)
            .stage("upload")
            .percent(40.0)
            .metadata(&json!({"progress_percent": "mine"}))
            .into_parts()
            .unwrap();
        assert!(touch.heartbeat);
        assert_eq!(touch.stage_name.as_deref(), Some("upload"));
        assert_eq!(note.message, "upload");
        assert_eq!(
            Value::Object(note.metadata),
            json!({"stage_name": "upload", "progress_percent": "mine"})
        );
        let (_, _, note) = Progress::new(&r).percent(0.0).into_parts().unwrap();
        assert_eq!(note.message, "task progress updated");
    }
}
