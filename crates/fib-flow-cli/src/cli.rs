//! The command line, as clap derive structs. Doc comments are the help text.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The database used when neither `--database` nor `FIB_FLOW_DATABASE_URL`
/// names one: a SQLite file in the current directory.
pub const DEFAULT_DATABASE: &str = "sqlite:fib-flow-demo.db";

/// fib-flow: a durable background-task and workflow engine.
#[derive(Debug, Clone, Parser)]
#[command(name = "fib-flow", version)]
pub struct Cli {
    /// Database URL: `sqlite:PATH` (created when missing), `sqlite::memory:`,
    /// `postgres://…` or `mysql://…`. A bare file path means a SQLite file.
    #[arg(
        long,
        global = true,
        env = "FIB_FLOW_DATABASE_URL",
        default_value = DEFAULT_DATABASE,
        value_name = "URL"
    )]
    pub database: String,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run a self-contained demo of the engine (on ./fib-flow-demo.db unless
    /// --database names another database).
    ///
    /// Submits dozens of tasks to three simulated handlers (resize_image,
    /// send_email, charge_card; some fail once, time out once or fail for
    /// good), runs them with live progress, then prints a summary per
    /// handler. Deletes every task in the database first. Exits with 1 if the
    /// tasks did not end as planned.
    Demo(DemoArgs),

    /// Measure throughput and latency on a database: submits one at a
    /// time, batch submits, drains of no-op tasks (also of a large
    /// backlog), an idle worker's pickup latency, and the floor: the same
    /// statements issued bare, without the engine, which each engine figure
    /// is given as a fraction of ("of floor").
    ///
    /// On PostgreSQL and MySQL the runs use their own schema (fib_flow_bench
    /// unless --schema names another), emptied before and after each
    /// workload; on SQLite a fresh file beside the named one (PATH.bench),
    /// removed afterwards. Prints a table, or with --json one JSON object
    /// per line and run.
    Bench(BenchArgs),
}

/// A `fib-flow bench` workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Tasks submitted one at a time, awaiting each.
    SubmitSingle,
    /// Tasks submitted through `submit_many` in batches.
    SubmitBatch,
    /// Pre-submitted no-op tasks drained by one manager.
    Drain,
    /// One drain of a large backlog (--backlog-tasks) at the first
    /// --concurrency, reported as drain-backlog.
    Backlog,
    /// Submit-to-handler-start latency of an idle worker.
    Latency,
    /// The database's ceiling for fib-flow's schema: the same insert,
    /// claim and complete statements issued bare, without the engine, in
    /// the same sizes (floor-insert-single, floor-insert-batch,
    /// floor-drain); each part runs right after the engine workload it
    /// bounds when that one is requested too.
    Floor,
}

/// Options of `fib-flow bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Workloads to run, in order (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',',
          default_values_t = [Workload::SubmitSingle, Workload::SubmitBatch, Workload::Drain,
                              Workload::Backlog, Workload::Latency, Workload::Floor])]
    pub workloads: Vec<Workload>,

    /// Tasks of submit-single.
    #[arg(long, default_value_t = 10_000, value_parser = parse_count)]
    pub single_tasks: usize,

    /// Tasks of submit-batch.
    #[arg(long, default_value_t = 100_000, value_parser = parse_count)]
    pub batch_tasks: usize,

    /// Tasks per submit_many call in submit-batch.
    #[arg(long, default_value_t = 1_000, value_parser = parse_count)]
    pub batch_size: usize,

    /// Tasks of drain.
    #[arg(long, default_value_t = 50_000, value_parser = parse_count)]
    pub drain_tasks: usize,

    /// Tasks of backlog (drain-backlog).
    #[arg(long, default_value_t = 500_000, value_parser = parse_count)]
    pub backlog_tasks: usize,

    /// max_concurrent_tasks of each drain, and the claim size of each
    /// floor-drain (comma-separated; the best drain is reported too;
    /// backlog uses the first).
    #[arg(long, value_delimiter = ',', default_values_t = [10usize], value_parser = parse_count)]
    pub concurrency: Vec<usize>,

    /// Tasks of latency.
    #[arg(long, default_value_t = 200, value_parser = parse_count)]
    pub latency_tasks: usize,

    /// Milliseconds between two submits in latency.
    #[arg(long, default_value_t = 50, value_name = "MS")]
    pub latency_interval_ms: u64,

    /// The idle worker's poll interval in latency, milliseconds (the
    /// library default; PostgreSQL wakes it sooner by LISTEN/NOTIFY).
    #[arg(long, default_value_t = 1_000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub poll_ms: u64,

    /// In latency, submit through the worker's own manager (the in-process
    /// wake-up) instead of a second manager standing for another process.
    #[arg(long)]
    pub one_process: bool,

    /// PostgreSQL schema / MySQL database for the runs.
    #[arg(long)]
    pub schema: Option<String>,

    /// One JSON object per line and run instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Give up (and fail) a drain after this many seconds.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub max_wait: u64,
}

/// A count of at least 1 and at most 10,000,000.
fn parse_count(value: &str) -> Result<usize, String> {
    let count: usize = value
        .parse()
        .map_err(|_| format!("{value:?} is not a whole number"))?;
    if (1..=10_000_000).contains(&count) {
        Ok(count)
    } else {
        Err(format!("must be between 1 and 10000000, got {count}"))
    }
}

/// Options of `fib-flow demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// How many tasks to submit.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub tasks: u32,

    /// Most handlers running at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub concurrency: u32,

    /// Give up (and fail) if the tasks have not all finished after this many
    /// seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub max_wait: u64,
}

/// The database URL as the library expects it: a bare path (no `scheme:`
/// prefix) becomes `sqlite:PATH`; anything else is passed on unchanged.
pub fn database_url(value: &str) -> String {
    let value = value.trim();
    let has_scheme = value
        .split_once(':')
        .is_some_and(|(scheme, _)| !scheme.is_empty() && scheme.chars().all(is_scheme_char));
    if has_scheme {
        value.to_owned()
    } else {
        format!("sqlite:{value}")
    }
}

/// The URL with any password replaced by `***`, for messages.
pub fn redacted(url: &str) -> String {
    if let (Some(start), Some(at)) = (url.find("://"), url.rfind('@')) {
        let credentials = &url[start + 3..at];
        if let Some(colon) = credentials.find(':') {
            return format!(
                "{}{}:***{}",
                &url[..start + 3],
                &credentials[..colon],
                &url[at..]
            );
        }
    }
    url.to_owned()
}

fn is_scheme_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_paths_become_sqlite_urls() {
        assert_eq!(database_url("demo.db"), "sqlite:demo.db");
        assert_eq!(database_url("/tmp/x/demo.db"), "sqlite:/tmp/x/demo.db");
        assert_eq!(database_url("sqlite:demo.db"), "sqlite:demo.db");
        assert_eq!(database_url("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(database_url("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redacted("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redacted("sqlite:a@b.db"), "sqlite:a@b.db");
    }
}
