//! What a handler returns: [`Step`] (done, spawn children, or suspend for a
//! person), the [`Child`] definitions of a workflow stage, and the
//! [`ChildResult`]s the parent sees at its next stage.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::state::{ChildFailure, TaskStatus};
use crate::task::TaskId;

/// What happens to the task after its handler returns.
///
/// The common cases are [`Step::done`], [`Step::children`] and
/// [`Step::suspend`]; `Ok(json!(…))` also works, as a JSON value converts
/// into `Step::Done`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Step {
    /// The task is done; the value is stored as its JSON result.
    Done(serde_json::Value),
    /// Create these child tasks and wait: the task resumes at `stage + 1`
    /// once all of them finished, and reads their outcomes with
    /// `Task::child_results()`. No children resumes it at once.
    Children(Children),
    /// Suspend for a person (human in the loop): never timed out, never
    /// resumed automatically; `resume_task` moves it to `stage + 1`,
    /// `cancel_task` fails it.
    Suspend(Suspension),
}

/// The children of one workflow stage; see [`Step::Children`].
#[derive(Debug, Clone)]
pub struct Children {
    pub(crate) children: Vec<Child>,
    pub(crate) context: Option<Vec<u8>>,
    pub(crate) on_failure: ChildFailure,
}

/// An explicit suspension; see [`Step::Suspend`].
#[derive(Debug, Clone)]
pub struct Suspension {
    pub(crate) reason: String,
    pub(crate) context: Option<Vec<u8>>,
}

impl Step {
    /// Done with a JSON result.
    pub fn done(value: impl Into<serde_json::Value>) -> Step {
        Step::Done(value.into())
    }

    /// Done with any serialisable result.
    pub fn done_with<T: Serialize>(value: &T) -> Result<Step> {
        serde_json::to_value(value)
            .map(Step::Done)
            .map_err(|source| Error::Serialization {
                field: "result",
                source,
            })
    }

    /// Create these children and wait for them (a workflow stage). A child
    /// that fails for good fails this task too, unless
    /// [`Step::on_child_failure`] says otherwise.
    pub fn children(children: impl IntoIterator<Item = Child>) -> Step {
        Step::Children(Children {
            children: children.into_iter().collect(),
            context: None,
            on_failure: ChildFailure::default(),
        })
    }

    /// Suspend until a person resumes or cancels the task. `reason` (1 to
    /// 255 bytes) is stored and queryable.
    pub fn suspend(reason: impl Into<String>) -> Step {
        Step::Suspend(Suspension {
            reason: reason.into(),
            context: None,
        })
    }

    /// Stores `bytes` as the task's private context, read back with
    /// `Task::context()` at its later stages. Applies to children and
    /// suspension steps; a done task keeps no context, so it is ignored
    /// there.
    pub fn context(mut self, bytes: impl Into<Vec<u8>>) -> Step {
        match &mut self {
            Step::Children(children) => children.context = Some(bytes.into()),
            Step::Suspend(suspension) => suspension.context = Some(bytes.into()),
            Step::Done(_) => {}
        }
        self
    }

    /// What a child's permanent failure does to this task (children steps
    /// only). Defaults to [`ChildFailure::FailParent`].
    pub fn on_child_failure(mut self, policy: ChildFailure) -> Step {
        if let Step::Children(children) = &mut self {
            children.on_failure = policy;
        }
        self
    }
}

impl From<serde_json::Value> for Step {
    fn from(value: serde_json::Value) -> Self {
        Step::Done(value)
    }
}

impl From<()> for Step {
    fn from((): ()) -> Self {
        Step::Done(serde_json::Value::Null)
    }
}

/// One child task of a workflow stage. Each unset option falls back to the
/// child handler's, then the manager's; `priority` falls back to the
/// handler's, then the parent's.
#[derive(Debug, Clone)]
pub struct Child {
    pub(crate) name: String,
    pub(crate) payload: std::result::Result<serde_json::Value, String>,
    pub(crate) priority: Option<i32>,
    pub(crate) tag: Option<String>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) retry_interval: Option<Duration>,
}

impl Child {
    /// A child running handler `name` with `payload`. A payload that cannot
    /// be serialised fails the parent's attempt (nothing is created).
    pub fn new<P: Serialize + ?Sized>(name: impl Into<String>, payload: &P) -> Child {
        Child {
            name: name.into(),
            payload: serde_json::to_value(payload).map_err(|e| e.to_string()),
            priority: None,
            tag: None,
            timeout: None,
            max_attempts: None,
            retry_interval: None,
        }
    }

    /// Higher runs first. Defaults to the handler's priority, else the
    /// parent's.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// A free label. Defaults to none.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Total run time of one attempt. Defaults to the handler's, else the
    /// manager's.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Total runs. Defaults to the handler's, else the manager's.
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = Some(max_attempts);
        self
    }

    /// Delay between runs after a failure. Defaults to the handler's, else
    /// the manager's.
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = Some(interval);
        self
    }
}

/// The outcome of one child of the stage that just finished, as its parent
/// sees it (derived from the child rows, in child-id order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildResult {
    /// The child's id.
    pub task_id: TaskId,
    /// Its handler name.
    pub name: String,
    /// `completed` or `permanently_failed`.
    pub status: TaskStatus,
    /// Its result, when completed.
    pub result: Option<serde_json::Value>,
    /// Its error, when it failed.
    pub error: Option<String>,
}

impl ChildResult {
    /// Whether the child completed.
    pub fn is_ok(&self) -> bool {
        self.status == TaskStatus::Completed
    }
}
