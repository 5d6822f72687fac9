//! `fib-flow demo`: submits dozens of tasks to three simulated handlers on a
//! real database, runs them with live progress, and prints what happened.
//!
//! Which tasks fail is decided by their index ([`plan`]), so the outcome is
//! known in advance ([`Expected`]); only the simulated work durations are
//! random.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use fib_flow::{
    BoxError, HandlerOptions, Step, Task, TaskFilter, TaskManager, TaskOptions, TaskRecord,
    TaskStats, TaskStatus,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cli::{database_url, redacted, DemoArgs};
use crate::output;

/// Handler that simulates resizing an image (50-400 ms of work in steps).
pub const RESIZE_IMAGE: &str = "resize_image";
/// Handler that simulates sending an email; some bounce once, then succeed.
pub const SEND_EMAIL: &str = "send_email";
/// Handler that simulates charging a card; some are declined every time, one
/// hangs past its timeout on the first attempt.
pub const CHARGE_CARD: &str = "charge_card";
/// The demo's handler names, in the order tasks are dealt to them.
pub const HANDLERS: [&str; 3] = [RESIZE_IMAGE, SEND_EMAIL, CHARGE_CARD];

/// Total runs allowed to each demo task.
pub const MAX_ATTEMPTS: u32 = 3;
/// Delay between a failed run and the next.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(200);
/// Timeout of one `charge_card` attempt.
pub const CHARGE_TIMEOUT: Duration = Duration::from_millis(1500);
/// How many `charge_card` tasks are declined on every attempt.
pub const DECLINED_CARDS: u32 = 2;

const POLL: Duration = Duration::from_millis(100);
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// How to show progress while the tasks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// An indicatif bar on stdout (for terminals).
    Bar,
    /// A plain line about once a second (for logs and pipes).
    Lines,
    /// Nothing until the final summary.
    Hidden,
}

impl ProgressMode {
    /// A bar when stdout is a terminal, plain lines otherwise.
    pub fn detect() -> Self {
        if std::io::stdout().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Lines
        }
    }
}

/// Everything the demo needs; build one from the command line with
/// [`DemoOptions::from_args`], or directly in tests.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Database URL (`sqlite:PATH`, `sqlite::memory:`, `postgres://…`,
    /// `mysql://…`).
    pub database_url: String,
    /// How many tasks to submit (>= 1).
    pub tasks: u32,
    /// Most handlers running at once (>= 1).
    pub concurrency: u32,
    /// Fail if the tasks have not all finished by then.
    pub max_wait: Duration,
    /// How to show progress.
    pub progress: ProgressMode,
}

impl DemoOptions {
    /// Options from the parsed command line.
    pub fn from_args(database: &str, args: &DemoArgs) -> Self {
        DemoOptions {
            database_url: database_url(database),
            tasks: args.tasks,
            concurrency: args.concurrency,
            max_wait: Duration::from_secs(args.max_wait),
            progress: ProgressMode::detect(),
        }
    }
}

/// How a planned task is meant to behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Succeeds on the first attempt.
    Succeed,
    /// Fails on the first attempt, succeeds on the retry.
    FailOnce,
    /// Times out on the first attempt, succeeds on the retry.
    TimeoutOnce,
    /// Fails on every attempt and ends permanently failed.
    AlwaysFail,
}

impl Behaviour {
    /// How many runs a task with this behaviour takes.
    pub fn attempts(self) -> u32 {
        match self {
            Behaviour::Succeed => 1,
            Behaviour::FailOnce | Behaviour::TimeoutOnce => 2,
            Behaviour::AlwaysFail => MAX_ATTEMPTS,
        }
    }

    /// The status the task ends in.
    pub fn final_status(self) -> TaskStatus {
        match self {
            Behaviour::AlwaysFail => TaskStatus::PermanentlyFailed,
            _ => TaskStatus::Completed,
        }
    }
}

/// One task the demo submits.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedTask {
    /// Position in submission order.
    pub index: u32,
    /// Handler name.
    pub name: &'static str,
    /// What it will do.
    pub behaviour: Behaviour,
    /// The JSON payload.
    pub payload: serde_json::Value,
    /// The tag it is submitted with.
    pub tag: &'static str,
    /// A task-level priority overriding the handler's, if any.
    pub priority: Option<i32>,
    /// A start delay, if any.
    pub delay: Option<Duration>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ResizeJob {
    image: String,
    width: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Email {
    to: String,
    subject: String,
    /// The simulated mail server answers "try again later" the first time.
    greylisted: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Card {
    Valid,
    Declined,
    /// The simulated gateway hangs on the first attempt.
    SlowGateway,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Charge {
    order: String,
    amount_cents: u64,
    card: Card,
}

/// The tasks the demo submits: dealt round-robin to [`HANDLERS`]. Every
/// fifth email (the 1st, 6th, ...) bounces once; the first
/// [`DECLINED_CARDS`] charges are always declined; the next charge times out
/// once. Every tenth image starts after a short delay; every fourth email is
/// urgent (priority 20).
pub fn plan(tasks: u32) -> Vec<PlannedTask> {
    (0..tasks)
        .map(|index| {
            let name = HANDLERS[index as usize % HANDLERS.len()];
            let nth = index / HANDLERS.len() as u32;
            match name {
                RESIZE_IMAGE => PlannedTask {
                    index,
                    name,
                    behaviour: Behaviour::Succeed,
                    payload: to_json(&ResizeJob {
                        image: format!("photos/img_{nth:04}.jpg"),
                        width: [320, 640, 1280][nth as usize % 3],
                    }),
                    tag: "media",
                    priority: None,
                    delay: (nth % 10 == 9).then_some(Duration::from_millis(500)),
                },
                SEND_EMAIL => {
                    let greylisted = nth.is_multiple_of(5);
                    PlannedTask {
                        index,
                        name,
                        behaviour: if greylisted {
                            Behaviour::FailOnce
                        } else {
                            Behaviour::Succeed
                        },
                        payload: to_json(&Email {
                            to: format!("user{nth}@example.com"),
                            subject: if nth.is_multiple_of(4) {
                                "Reset your password".into()
                            } else {
                                format!("Your weekly digest #{nth}")
                            },
                            greylisted,
                        }),
                        tag: "notifications",
                        priority: nth.is_multiple_of(4).then_some(20),
                        delay: None,
                    }
                }
                _ => {
                    let card = if nth < DECLINED_CARDS {
                        Card::Declined
                    } else if nth == DECLINED_CARDS {
                        Card::SlowGateway
                    } else {
                        Card::Valid
                    };
                    PlannedTask {
                        index,
                        name,
                        behaviour: match card {
                            Card::Valid => Behaviour::Succeed,
                            Card::Declined => Behaviour::AlwaysFail,
                            Card::SlowGateway => Behaviour::TimeoutOnce,
                        },
                        payload: to_json(&Charge {
                            order: format!("order-{:05}", 1000 + nth),
                            amount_cents: 499 + 250 * u64::from(nth % 7),
                            card,
                        }),
                        tag: "billing",
                        priority: None,
                        delay: None,
                    }
                }
            }
        })
        .collect()
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    // Plain derived structs always serialise.
    serde_json::to_value(value).unwrap_or_default()
}

/// What the demo should end with, derived from its [`plan`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expected {
    /// Tasks that end `completed`.
    pub completed: u64,
    /// Tasks that end `permanently_failed`.
    pub permanently_failed: u64,
    /// Total runs of all tasks.
    pub attempts: u64,
}

impl Expected {
    /// The expected outcome of `plan`.
    pub fn of(plan: &[PlannedTask]) -> Self {
        plan.iter().fold(Expected::default(), |mut e, task| {
            match task.behaviour.final_status() {
                TaskStatus::PermanentlyFailed => e.permanently_failed += 1,
                _ => e.completed += 1,
            }
            e.attempts += u64::from(task.behaviour.attempts());
            e
        })
    }
}

/// Per-handler totals of the finished run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandlerSummary {
    /// Handler name.
    pub name: String,
    /// Tasks submitted.
    pub tasks: u64,
    /// Tasks completed.
    pub completed: u64,
    /// Tasks permanently failed.
    pub permanently_failed: u64,
    /// Sum of the tasks' `attempt` (runs).
    pub attempts: u64,
    /// Sum of the tasks' `retry_count`.
    pub retries: u64,
}

/// What a demo run produced.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// Time from the first submission until every task was finished.
    pub elapsed: Duration,
    /// Totals per handler, in [`HANDLERS`] order.
    pub handlers: Vec<HandlerSummary>,
    /// Every task row at the end, by id.
    pub records: Vec<TaskRecord>,
    /// What the plan said would happen.
    pub expected: Expected,
}

impl DemoReport {
    /// Totals over all handlers (`name` is "total").
    pub fn total(&self) -> HandlerSummary {
        self.handlers.iter().fold(
            HandlerSummary {
                name: "total".into(),
                ..HandlerSummary::default()
            },
            |mut t, h| {
                t.tasks += h.tasks;
                t.completed += h.completed;
                t.permanently_failed += h.permanently_failed;
                t.attempts += h.attempts;
                t.retries += h.retries;
                t
            },
        )
    }

    /// Whether the counts of completed and permanently failed tasks are the
    /// ones the plan predicts.
    pub fn as_expected(&self) -> bool {
        let total = self.total();
        total.completed == self.expected.completed
            && total.permanently_failed == self.expected.permanently_failed
    }

    /// Finished tasks per second.
    pub fn throughput(&self) -> f64 {
        self.records.len() as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Runs the demo: resets the database's tasks, registers the handlers,
/// submits [`plan`]`(options.tasks)`, waits until every task is finished,
/// stops the manager and prints the summary.
pub async fn run(options: &DemoOptions) -> anyhow::Result<DemoReport> {
    if options.tasks == 0 || options.concurrency == 0 {
        bail!("--tasks and --concurrency must be at least 1");
    }
    let manager = TaskManager::builder()
        .database(options.database_url.clone())
        .max_concurrent_tasks(options.concurrency as usize)
        .max_attempts(MAX_ATTEMPTS)
        .retry_interval(RETRY_INTERVAL)
        .poll_interval(POLL)
        .shutdown_timeout(Duration::from_secs(5))
        .build()
        .await
        .with_context(|| format!("opening {}", redacted(&options.database_url)))?;
    let outcome = drive(&manager, options).await;
    let stopped = manager.stop().await.context("stopping the task manager");
    let report = outcome?;
    stopped?;
    print_report(&report, options);
    Ok(report)
}

async fn drive(manager: &TaskManager, options: &DemoOptions) -> anyhow::Result<DemoReport> {
    manager.setup().await.context("creating the schema")?;
    let removed = manager.delete_tasks(TaskFilter::new()).await?;
    register_handlers(manager)?;
    manager.start().await?;

    let plan = plan(options.tasks);
    let expected = Expected::of(&plan);
    println!(
        "fib-flow demo: {} tasks on {} (concurrency {}{})",
        plan.len(),
        redacted(&options.database_url),
        options.concurrency,
        if removed > 0 {
            format!(", removed {removed} tasks of an earlier run")
        } else {
            String::new()
        },
    );

    let started = Instant::now();
    for task in &plan {
        let mut task_options = TaskOptions::new().tag(task.tag);
        if let Some(priority) = task.priority {
            task_options = task_options.priority(priority);
        }
        if let Some(delay) = task.delay {
            task_options = task_options.delay(delay);
        }
        manager
            .submit_with(task.name, &task.payload, task_options)
            .await
            .with_context(|| format!("submitting task {} ({})", task.index, task.name))?;
    }
    let mut per_name: BTreeMap<&str, usize> = BTreeMap::new();
    for task in &plan {
        *per_name.entry(task.name).or_default() += 1;
    }
    println!(
        "submitted {} in {:.0?}: {}",
        plan.len(),
        started.elapsed(),
        HANDLERS
            .iter()
            .filter_map(|name| per_name.get(name).map(|n| format!("{n} {name}")))
            .collect::<Vec<_>>()
            .join(", "),
    );

    wait_for_all(manager, options, plan.len() as u64, started).await?;
    let elapsed = started.elapsed();
    let records = manager.get_tasks(TaskFilter::new()).await?;
    Ok(DemoReport {
        elapsed,
        handlers: summarise(&records),
        records,
        expected,
    })
}

fn register_handlers(manager: &TaskManager) -> anyhow::Result<()> {
    manager.register_with(
        RESIZE_IMAGE,
        resize_image,
        HandlerOptions::new()
            .timeout(Duration::from_secs(10))
            .max_concurrent_tasks(4)
            .description("simulated image resize (50-400 ms)"),
    )?;
    manager.register_with(
        SEND_EMAIL,
        send_email,
        HandlerOptions::new()
            .priority(5)
            .description("simulated email delivery; greylisted mail bounces once"),
    )?;
    manager.register_with(
        CHARGE_CARD,
        charge_card,
        HandlerOptions::new()
            .priority(10)
            .timeout(CHARGE_TIMEOUT)
            .description("simulated card charge; declined cards never succeed"),
    )?;
    Ok(())
}

fn random_ms(range: RangeInclusive<u64>) -> Duration {
    Duration::from_millis(rand::rng().random_range(range))
}

async fn resize_image(task: Task) -> Result<Step, BoxError> {
    let job: ResizeJob = task.payload()?;
    // Four steps of work; a real handler would report progress here.
    let step = random_ms(50..=400) / 4;
    for _ in 0..4 {
        tokio::time::sleep(step).await;
        task.check_timeout()?;
    }
    Ok(Step::done(json!({
        "image": job.image,
        "thumbnail": job.image.replace(".jpg", &format!("_{}w.jpg", job.width)),
    })))
}

async fn send_email(task: Task) -> Result<Step, BoxError> {
    let email: Email = task.payload()?;
    tokio::time::sleep(random_ms(20..=120)).await;
    if email.greylisted && task.retry_count() == 0 {
        return Err(format!("451 4.7.1 greylisted, try again later ({})", email.to).into());
    }
    Ok(Step::done(
        json!({ "delivered_to": email.to, "subject": email.subject }),
    ))
}

async fn charge_card(task: Task) -> Result<Step, BoxError> {
    let charge: Charge = task.payload()?;
    match charge.card {
        Card::Declined => {
            tokio::time::sleep(random_ms(30..=80)).await;
            Err(format!(
                "card declined: insufficient funds ({}, {} cents)",
                charge.order, charge.amount_cents
            )
            .into())
        }
        Card::SlowGateway if task.retry_count() == 0 => {
            // Hangs far past the handler's timeout; the engine stops it.
            tokio::time::sleep(CHARGE_TIMEOUT * 10).await;
            Err("the payment gateway never answered".into())
        }
        Card::Valid | Card::SlowGateway => {
            tokio::time::sleep(random_ms(50..=200)).await;
            Ok(Step::done(
                json!({ "order": charge.order, "charged_cents": charge.amount_cents }),
            ))
        }
    }
}

/// Task counts by status, over every task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    pending: u64,
    running: u64,
    retrying: u64,
    completed: u64,
    permanently_failed: u64,
    other: u64,
}

impl Counts {
    fn of(stats: &[TaskStats]) -> Self {
        stats.iter().fold(Counts::default(), |mut c, row| {
            let slot = match row.status {
                TaskStatus::Pending => &mut c.pending,
                TaskStatus::Running => &mut c.running,
                TaskStatus::Failed | TaskStatus::Timeout => &mut c.retrying,
                TaskStatus::Completed => &mut c.completed,
                TaskStatus::PermanentlyFailed => &mut c.permanently_failed,
                TaskStatus::Paused | TaskStatus::Suspended => &mut c.other,
            };
            *slot += row.count;
            c
        })
    }

    fn finished(&self) -> u64 {
        self.completed + self.permanently_failed
    }

    fn describe(&self) -> String {
        format!(
            "{} running, {} waiting to retry, {} pending, {} failed for good",
            self.running, self.retrying, self.pending, self.permanently_failed
        )
    }
}

/// Polls the task counts until every task is finished, showing progress.
async fn wait_for_all(
    manager: &TaskManager,
    options: &DemoOptions,
    total: u64,
    started: Instant,
) -> anyhow::Result<()> {
    let bar = match options.progress {
        ProgressMode::Bar => {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stdout());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner:.green} [{elapsed_precise}] {bar:40.cyan/blue} {pos}/{len} finished  {msg}",
                )?
                .progress_chars("=> "),
            );
            Some(bar)
        }
        ProgressMode::Lines | ProgressMode::Hidden => None,
    };
    let mut last_line: Option<Instant> = None;
    let mut ticker = tokio::time::interval(POLL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = loop {
        ticker.tick().await;
        let counts = match manager.task_stats(None).await {
            Ok(stats) => Counts::of(&stats),
            Err(error) => break Err(anyhow::Error::new(error).context("reading task counts")),
        };
        let done = counts.finished() >= total;
        if let Some(bar) = &bar {
            bar.set_position(counts.finished());
            bar.set_message(counts.describe());
        } else if options.progress == ProgressMode::Lines
            && (done || last_line.is_none_or(|at| at.elapsed() >= PLAIN_PROGRESS_EVERY))
        {
            println!(
                "[{:>5.1}s] {}/{} finished: {}",
                started.elapsed().as_secs_f64(),
                counts.finished(),
                total,
                counts.describe()
            );
            last_line = Some(Instant::now());
        }
        if done {
            break Ok(());
        }
        if started.elapsed() >= options.max_wait {
            break Err(anyhow::anyhow!(
                "the tasks did not all finish within {:?} ({}/{} finished: {})",
                options.max_wait,
                counts.finished(),
                total,
                counts.describe()
            ));
        }
    };
    if let Some(bar) = bar {
        bar.finish();
    }
    result
}

fn summarise(records: &[TaskRecord]) -> Vec<HandlerSummary> {
    HANDLERS
        .iter()
        .map(|name| {
            records.iter().filter(|r| r.name == *name).fold(
                HandlerSummary {
                    name: (*name).to_owned(),
                    ..HandlerSummary::default()
                },
                |mut s, r| {
                    s.tasks += 1;
                    match r.status {
                        TaskStatus::Completed => s.completed += 1,
                        TaskStatus::PermanentlyFailed => s.permanently_failed += 1,
                        _ => {}
                    }
                    s.attempts += u64::try_from(r.attempt).unwrap_or(0);
                    s.retries += u64::from(r.retry_count);
                    s
                },
            )
        })
        .collect()
}

fn print_report(report: &DemoReport, options: &DemoOptions) {
    let mut summary = report.handlers.clone();
    summary.push(report.total());
    println!();
    println!("{}", output::summary_table(&summary));
    println!(
        "{} tasks in {:.2} s ({:.1} tasks/s) with concurrency {}",
        report.records.len(),
        report.elapsed.as_secs_f64(),
        report.throughput(),
        options.concurrency,
    );

    let failed: Vec<&TaskRecord> = report
        .records
        .iter()
        .filter(|r| r.status == TaskStatus::PermanentlyFailed)
        .collect();
    if !failed.is_empty() {
        println!();
        println!("Permanently failed:");
        println!("{}", output::task_error_table(&failed));
    }
    let recovered: Vec<&TaskRecord> = report
        .records
        .iter()
        .filter(|r| r.status == TaskStatus::Completed && r.retry_count > 0)
        .collect();
    if !recovered.is_empty() {
        println!();
        println!("Completed after a retry (the error of the failed attempt):");
        println!("{}", output::task_error_table(&recovered));
    }
    if !report.as_expected() {
        let total = report.total();
        println!();
        println!(
            "UNEXPECTED: the plan predicts {} completed and {} permanently failed, got {} and {}",
            report.expected.completed,
            report.expected.permanently_failed,
            total.completed,
            total.permanently_failed
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_plan_mixes_handlers_and_failures() {
        let plan = plan(60);
        assert_eq!(plan.len(), 60);
        for name in HANDLERS {
            assert_eq!(plan.iter().filter(|t| t.name == name).count(), 20);
        }
        let expected = Expected::of(&plan);
        assert_eq!(expected.permanently_failed, u64::from(DECLINED_CARDS));
        assert_eq!(expected.completed, 60 - u64::from(DECLINED_CARDS));
        // 4 greylisted emails and one slow gateway retry once; 2 declined
        // cards run MAX_ATTEMPTS times.
        assert_eq!(
            expected.attempts,
            60 + 4 + 1 + u64::from(DECLINED_CARDS) * u64::from(MAX_ATTEMPTS - 1)
        );
    }

    #[test]
    fn small_plans_still_work() {
        let plan = plan(1);
        assert_eq!(plan[0].name, RESIZE_IMAGE);
        assert_eq!(Expected::of(&plan).completed, 1);
    }

    #[test]
    fn counts_group_retrying_statuses() {
        let stat = |status, count| TaskStats {
            tag: None,
            name: "x".into(),
            status,
            count,
        };
        let counts = Counts::of(&[
            stat(TaskStatus::Failed, 2),
            stat(TaskStatus::Timeout, 1),
            stat(TaskStatus::Completed, 5),
            stat(TaskStatus::PermanentlyFailed, 1),
        ]);
        assert_eq!(counts.retrying, 3);
        assert_eq!(counts.finished(), 6);
    }
}
