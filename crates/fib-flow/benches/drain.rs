//! Whole-system benchmark: submit N no-op tasks, then start a manager and
//! time how long it takes to complete them all.
//!
//! ```text
//! cargo bench -p fib-flow --bench drain
//! cargo bench -p fib-flow --bench drain -- --tasks 20000 --concurrency 10,50
//! cargo bench -p fib-flow --bench drain -- --backends sqlite_file,postgres
//! ```
//!
//! Options (also as environment variables `FIB_FLOW_BENCH_TASKS`,
//! `FIB_FLOW_BENCH_CONCURRENCY`, `FIB_FLOW_BENCH_BACKENDS`):
//! - `--tasks N`: tasks per run (default 5000);
//! - `--concurrency C[,C...]`: `max_concurrent_tasks` of each run (default
//!   10,50);
//! - `--backends B[,B...]`: `sqlite_file`, `sqlite_memory`, `postgres`,
//!   `mysql` (default: both SQLite ones, plus each server whose
//!   `FIB_FLOW_TEST_POSTGRES_URL` / `FIB_FLOW_TEST_MYSQL_URL` is set; a
//!   server run uses a fresh schema and drops it afterwards);
//! - `--max-wait SECS`: give up on a drain after this long (default 600).
//!
//! Each (backend, concurrency) prints one line: submissions per second (one
//! `submit` at a time, before `start`), drained tasks per second (from
//! `start` until `task_stats` counts all of them completed, polled every
//! 20 ms), the wall time of the drain, and the drain rate of each quarter
//! of the run (a rate that falls from quarter to quarter shows a slowdown
//! as the table fills with finished rows).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use fib_flow::{BoxError, Step, Task, TaskManager, TaskStatus};

const DEFAULT_TASKS: usize = 5_000;
const DEFAULT_CONCURRENCY: &[usize] = &[10, 50];
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(600);
const POLL: Duration = Duration::from_millis(20);

struct Options {
    tasks: usize,
    concurrency: Vec<usize>,
    backends: Vec<String>,
    max_wait: Duration,
}

fn parse_list<T: std::str::FromStr>(what: &str, value: &str) -> anyhow::Result<Vec<T>> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse()
                .map_err(|_| anyhow::anyhow!("{what}: cannot parse {item:?}"))
        })
        .collect()
}

fn server_url(backend: &str) -> Option<String> {
    let var = match backend {
        "postgres" => "FIB_FLOW_TEST_POSTGRES_URL",
        "mysql" => "FIB_FLOW_TEST_MYSQL_URL",
        _ => return None,
    };
    std::env::var(var).ok().filter(|url| !url.trim().is_empty())
}

fn parse_options() -> anyhow::Result<Options> {
    let env = |name: &str| std::env::var(name).ok();
    let mut tasks = env("FIB_FLOW_BENCH_TASKS");
    let mut concurrency = env("FIB_FLOW_BENCH_CONCURRENCY");
    let mut backends = env("FIB_FLOW_BENCH_BACKENDS");
    let mut max_wait = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .with_context(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            "--tasks" => tasks = Some(value()?),
            "--concurrency" => concurrency = Some(value()?),
            "--backends" => backends = Some(value()?),
            "--max-wait" => max_wait = Some(value()?),
            "-h" | "--help" => {
                println!(
                    "drain [--tasks N] [--concurrency C,C] [--backends sqlite_file,sqlite_memory,postgres,mysql] [--max-wait SECS]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let tasks = match tasks {
        Some(text) => text.trim().parse().context("--tasks")?,
        None => DEFAULT_TASKS,
    };
    let concurrency = match concurrency {
        Some(text) => parse_list("--concurrency", &text)?,
        None => DEFAULT_CONCURRENCY.to_vec(),
    };
    let backends = match backends {
        Some(text) => parse_list("--backends", &text)?,
        None => ["sqlite_file", "sqlite_memory", "postgres", "mysql"]
            .into_iter()
            .filter(|b| b.starts_with("sqlite") || server_url(b).is_some())
            .map(str::to_owned)
            .collect(),
    };
    let max_wait = match max_wait {
        Some(text) => Duration::from_secs(text.trim().parse().context("--max-wait")?),
        None => DEFAULT_MAX_WAIT,
    };
    if tasks == 0 || concurrency.is_empty() || concurrency.contains(&0) {
        bail!("--tasks and every --concurrency value must be at least 1");
    }
    Ok(Options {
        tasks,
        concurrency,
        backends,
        max_wait,
    })
}

/// Where one run's database lives; dropped (or its schema dropped) after.
struct Database {
    url: String,
    backend: String,
    schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Database {
    fn new(backend: &str) -> anyhow::Result<Self> {
        let unique = || {
            format!(
                "ffbench_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..16]
            )
        };
        let (url, schema, dir) = match backend {
            "sqlite_file" => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite:{}", dir.path().join("drain.db").display());
                (url, None, Some(dir))
            }
            "sqlite_memory" => ("sqlite::memory:".to_owned(), None, None),
            "postgres" | "mysql" => {
                let url = server_url(backend).with_context(|| {
                    format!(
                        "{backend}: set FIB_FLOW_TEST_{}_URL",
                        backend.to_uppercase()
                    )
                })?;
                (url, Some(unique()), None)
            }
            other => bail!("unknown backend {other:?}"),
        };
        Ok(Database {
            url,
            backend: backend.to_owned(),
            schema,
            _dir: dir,
        })
    }

    async fn drop_schema(&self) -> anyhow::Result<()> {
        use sqlx::Connection;
        let Some(schema) = &self.schema else {
            return Ok(());
        };
        if self.backend == "postgres" {
            let mut conn = sqlx::PgConnection::connect(&self.url).await?;
            sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .execute(&mut conn)
                .await?;
        } else {
            let mut conn = sqlx::MySqlConnection::connect(&self.url).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS `{schema}`"))
                .execute(&mut conn)
                .await?;
        }
        Ok(())
    }
}

struct Outcome {
    submit: Duration,
    drain: Duration,
    /// Time at which each quarter of the tasks had completed.
    quarters: [Duration; 4],
    completed: usize,
}

async fn completed(manager: &TaskManager) -> anyhow::Result<usize> {
    Ok(manager
        .task_stats(None)
        .await?
        .iter()
        .filter(|s| s.status == TaskStatus::Completed)
        .map(|s| usize::try_from(s.count).unwrap_or(usize::MAX))
        .sum())
}

async fn run(
    db: &Database,
    tasks: usize,
    concurrency: usize,
    max_wait: Duration,
) -> anyhow::Result<Outcome> {
    let builder = TaskManager::builder()
        .database(db.url.clone())
        .max_concurrent_tasks(concurrency)
        .poll_interval(Duration::from_millis(50));
    let builder = match &db.schema {
        Some(schema) => builder.schema(schema.clone()),
        None => builder,
    };
    let manager = builder.build().await?;
    manager.setup().await?;
    manager.register("noop", |_task: Task| async move {
        Ok::<_, BoxError>(Step::done(serde_json::Value::Null))
    })?;

    let started = Instant::now();
    for i in 0..tasks {
        manager.submit("noop", &i).await?;
    }
    let submit = started.elapsed();

    let started = Instant::now();
    manager.start().await?;
    let mut quarters = [Duration::ZERO; 4];
    let mut next_quarter = 0;
    let mut done = 0;
    loop {
        done = completed(&manager).await.unwrap_or(done);
        let elapsed = started.elapsed();
        while next_quarter < 4 && done * 4 >= tasks * (next_quarter + 1) {
            quarters[next_quarter] = elapsed;
            next_quarter += 1;
        }
        if done >= tasks || elapsed > max_wait {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let drain = started.elapsed();
    if done < tasks {
        let stats = manager.task_stats(None).await?;
        eprintln!("gave up after {drain:?}: {done} of {tasks} completed; {stats:?}");
    }
    manager.stop().await?;
    Ok(Outcome {
        submit,
        drain,
        quarters,
        completed: done,
    })
}

fn rate(count: usize, time: Duration) -> f64 {
    count as f64 / time.as_secs_f64().max(1e-9)
}

fn main() -> anyhow::Result<()> {
    let options = parse_options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "drain: {} no-op tasks per run; backends {}; concurrency {:?}",
        options.tasks,
        options.backends.join(","),
        options.concurrency
    );
    for backend in &options.backends {
        for &concurrency in &options.concurrency {
            let db = Database::new(backend)?;
            let outcome = runtime.block_on(async {
                let outcome = run(&db, options.tasks, concurrency, options.max_wait).await;
                if let Err(error) = db.drop_schema().await {
                    eprintln!("could not drop the benchmark schema: {error}");
                }
                outcome
            })?;
            let quarter = options.tasks as f64 / 4.0;
            let mut previous = Duration::ZERO;
            let quarter_rates: Vec<String> = outcome
                .quarters
                .iter()
                .map(|&at| {
                    if at < previous || at.is_zero() {
                        return "-".to_owned(); // not reached
                    }
                    let r = quarter / (at - previous).as_secs_f64().max(1e-9);
                    previous = at;
                    format!("{r:.0}")
                })
                .collect();
            println!(
                "{backend:<13} c={concurrency:<4} submit {:>8.0}/s  drain {:>8.0}/s  wall {:>7.2}s  quarters {}/s{}",
                rate(options.tasks, outcome.submit),
                rate(outcome.completed, outcome.drain),
                outcome.drain.as_secs_f64(),
                quarter_rates.join(" "),
                if outcome.completed < options.tasks {
                    format!("  INCOMPLETE {}/{}", outcome.completed, options.tasks)
                } else {
                    String::new()
                },
            );
        }
    }
    Ok(())
}
