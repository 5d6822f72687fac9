//! The command line, driven through the library's `run` (no child process).

use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use fib_flow::{TaskFilter, TaskManager, TaskStatus};
use fib_flow_cli::commands::bench;
use fib_flow_cli::commands::demo::{self, DemoOptions, ProgressMode, CHARGE_CARD, SEND_EMAIL};
use fib_flow_cli::{run, Cli, Command, Workload};

#[test]
fn the_command_line_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn demo_defaults_and_global_database_flag() -> anyhow::Result<()> {
    let cli = Cli::try_parse_from(["fib-flow", "demo", "--database", "sqlite:x.db"])?;
    assert_eq!(cli.database, "sqlite:x.db");
    let Command::Demo(args) = &cli.command else {
        panic!("parsed as {:?}", cli.command);
    };
    assert_eq!((args.tasks, args.concurrency), (60, 8));
    assert!(Cli::try_parse_from(["fib-flow", "demo", "--tasks", "0"]).is_err());
    Ok(())
}

async fn count(manager: &TaskManager, status: TaskStatus) -> anyhow::Result<usize> {
    Ok(manager
        .get_tasks(TaskFilter::new().status(status))
        .await?
        .len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_every_task_to_its_planned_end() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:{}", dir.path().join("demo.db").display());
    let cli = Cli::try_parse_from([
        "fib-flow",
        "--database",
        &url,
        "demo",
        "--tasks",
        "12",
        "--concurrency",
        "4",
    ])?;
    // Run it twice: the second run must reset the first one's tasks.
    for _ in 0..2 {
        let code = run(cli.clone()).await?;
        assert_eq!(code, ExitCode::SUCCESS);
    }

    let manager = TaskManager::builder().database(url).build().await?;
    let tasks = manager.get_tasks(TaskFilter::new()).await?;
    assert_eq!(tasks.len(), 12);
    // 12 tasks: 4 of each handler; 2 declined cards fail for good, the
    // third card times out once, the first email bounces once.
    assert_eq!(count(&manager, TaskStatus::Completed).await?, 10);
    assert_eq!(count(&manager, TaskStatus::PermanentlyFailed).await?, 2);
    for task in &tasks {
        match task.status {
            TaskStatus::PermanentlyFailed => {
                assert_eq!(task.name, CHARGE_CARD);
                assert_eq!(task.attempt, 3, "{task:?}");
                let error = task.error.as_deref().context("an error is recorded")?;
                assert!(error.contains("card declined"), "{error}");
            }
            _ => assert!(task.status == TaskStatus::Completed && task.result.is_some()),
        }
    }
    let retried: Vec<_> = tasks.iter().filter(|t| t.retry_count > 0).collect();
    assert_eq!(retried.len(), 4, "{retried:?}");
    let timed_out = tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Completed && t.name == CHARGE_CARD)
        .filter(|t| t.error.as_deref().is_some_and(|e| e.contains("timeout")))
        .count();
    assert_eq!(timed_out, 1);
    let bounced = tasks
        .iter()
        .filter(|t| t.name == SEND_EMAIL && t.retry_count == 1)
        .count();
    assert_eq!(bounced, 1);
    let attempts: i64 = tasks.iter().map(|t| t.attempt).sum();
    let expected = demo::Expected::of(&demo::plan(12));
    assert_eq!(u64::try_from(attempts)?, expected.attempts);
    manager.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_report_matches_the_plan() -> anyhow::Result<()> {
    let options = DemoOptions {
        database_url: "sqlite::memory:".into(),
        tasks: 7,
        concurrency: 2,
        max_wait: std::time::Duration::from_secs(60),
        progress: ProgressMode::Hidden,
    };
    let report = demo::run(&options).await?;
    assert!(report.as_expected(), "{report:?}");
    let total = report.total();
    assert_eq!(total.tasks, 7);
    assert_eq!(total.attempts, demo::Expected::of(&demo::plan(7)).attempts);
    Ok(())
}

#[tokio::test]
async fn an_unsupported_database_is_an_error() -> anyhow::Result<()> {
    let cli = Cli::try_parse_from(["fib-flow", "--database", "oracle://nowhere/db", "demo"])?;
    match run(cli).await {
        Err(error) => assert!(
            format!("{error:#}").contains("oracle://nowhere/db"),
            "{error:#}"
        ),
        Ok(code) => panic!("oracle is not supported, but the demo exited with {code:?}"),
    }
    Ok(())
}

#[test]
fn bench_defaults_follow_the_issue() -> anyhow::Result<()> {
    let cli = Cli::try_parse_from(["fib-flow", "bench"])?;
    let Command::Bench(args) = &cli.command else {
        panic!("parsed as {:?}", cli.command);
    };
    assert_eq!(
        args.workloads,
        [
            Workload::SubmitSingle,
            Workload::SubmitBatch,
            Workload::Drain,
            Workload::Backlog,
            Workload::Latency,
            Workload::Floor
        ]
    );
    assert_eq!(
        (
            args.single_tasks,
            args.batch_tasks,
            args.batch_size,
            args.drain_tasks
        ),
        (10_000, 100_000, 1_000, 50_000)
    );
    assert_eq!(args.backlog_tasks, 500_000);
    assert_eq!(args.concurrency, [10]);
    assert!(Cli::try_parse_from(["fib-flow", "bench", "--batch-size", "0"]).is_err());
    assert!(Cli::try_parse_from(["fib-flow", "bench", "--workloads", "nap"]).is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_runs_every_workload_and_leaves_nothing_behind() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("flow.db");
    let figures = run_bench(
        &format!("sqlite:{}", db.display()),
        &[
            "--single-tasks",
            "50",
            "--batch-tasks",
            "250",
            "--batch-size",
            "100",
            "--drain-tasks",
            "200",
            "--concurrency",
            "2,8",
            "--backlog-tasks",
            "40",
            "--latency-tasks",
            "20",
            "--latency-interval-ms",
            "5",
            "--poll-ms",
            "20",
        ],
    )
    .await?;
    let runs: Vec<_> = figures
        .iter()
        .map(|f| (f.workload, f.tasks, f.batch, f.concurrency))
        .collect();
    assert_eq!(
        runs,
        [
            // Each engine workload is followed at once by its floor.
            ("submit-single", 50, None, None),
            ("floor-insert-single", 50, None, None),
            ("submit-batch", 250, Some(100), None),
            ("floor-insert-batch", 250, Some(100), None),
            ("drain", 200, None, Some(2)),
            ("floor-drain", 200, None, Some(2)),
            ("drain", 200, None, Some(8)),
            ("floor-drain", 200, None, Some(8)),
            ("drain-backlog", 40, None, Some(2)),
            ("latency", 20, None, None),
        ]
    );
    for figure in &figures {
        assert_eq!(figure.backend, "sqlite");
        assert!(figure.rate > 0.0 && figure.seconds > 0.0, "{figure:?}");
    }
    assert_drains_and_floor_ratios(&figures)?;
    assert!(bench::best_drain(&figures).is_some());
    let latency = figures[9].latency_ms.context("latency figures")?;
    assert!(
        latency.p50 <= latency.p99 && latency.p99 <= latency.max,
        "{latency:?}"
    );
    // The named database was never created; the scratch file is gone.
    let left: Vec<_> = std::fs::read_dir(dir.path())?.collect::<Result<_, _>>()?;
    assert!(left.is_empty(), "{left:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_floor_runs_the_parts_no_engine_workload_was_paired_with() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("flow.db");
    let figures = run_bench(
        &format!("sqlite:{}", db.display()),
        &[
            "--workloads",
            "drain,floor",
            "--single-tasks",
            "10",
            "--batch-tasks",
            "30",
            "--batch-size",
            "10",
            "--drain-tasks",
            "40",
            "--concurrency",
            "4",
        ],
    )
    .await?;
    let runs: Vec<_> = figures.iter().map(|f| (f.workload, f.tasks)).collect();
    assert_eq!(
        runs,
        [
            ("drain", 40),
            ("floor-drain", 40),
            ("floor-insert-single", 10),
            ("floor-insert-batch", 30),
        ]
    );
    assert!(figures[0].floor_ratio.is_some_and(|r| r > 0.0));
    Ok(())
}

/// Every drain has ten tenths; exactly the engine figures with a floor
/// counterpart (submit-single, submit-batch, drain) have a positive
/// `floor_ratio`, present in their JSON.
/// Parses `fib-flow --database DATABASE bench ARGS…` and runs it.
async fn run_bench(database: &str, args: &[&str]) -> anyhow::Result<Vec<bench::Figure>> {
    let cli = Cli::try_parse_from(
        ["fib-flow", "--database", database, "bench"]
            .into_iter()
            .chain(args.iter().copied()),
    )?;
    let Command::Bench(bench_args) = &cli.command else {
        panic!("parsed as {:?}", cli.command);
    };
    bench::run(&cli.database, bench_args).await
}

fn assert_drains_and_floor_ratios(figures: &[bench::Figure]) -> anyhow::Result<()> {
    for figure in figures {
        if figure.workload.contains("drain") {
            assert_eq!(figure.tenths.len(), 10, "{figure:?}");
        }
        let bounded = ["submit-single", "submit-batch", "drain"].contains(&figure.workload);
        assert_eq!(figure.floor_ratio.is_some(), bounded, "{figure:?}");
        assert!(figure.floor_ratio.is_none_or(|r| r > 0.0), "{figure:?}");
        let json = serde_json::to_value(figure)?;
        assert_eq!(json.get("floor_ratio").is_some(), bounded, "{json}");
    }
    Ok(())
}

/// The server URL of a backend from the test environment; `None` (skip)
/// when unset, a failure under `FIB_FLOW_TEST_REQUIRE_ALL=1`.
fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("FIB_FLOW_TEST_REQUIRE_ALL").as_deref() != Ok("1"),
                "{var} is not set and FIB_FLOW_TEST_REQUIRE_ALL=1"
            );
            eprintln!("skipped: {var} is not set");
            None
        }
    }
}

/// The engine and floor workloads on PostgreSQL and MySQL (when their test
/// URLs are set), in a schema of their own that ends up empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_floor_and_backlog_run_on_the_servers() -> anyhow::Result<()> {
    for (var, backend) in [
        ("FIB_FLOW_TEST_POSTGRES_URL", "postgres"),
        ("FIB_FLOW_TEST_MYSQL_URL", "mysql"),
    ] {
        let Some(url) = server_url(var) else { continue };
        let schema = "fib_flow_cli_bench_test";
        let figures = run_bench(
            &url,
            &[
                "--workloads",
                "submit-single,submit-batch,drain,backlog,floor",
                "--single-tasks",
                "20",
                "--batch-tasks",
                "50",
                "--batch-size",
                "10",
                "--drain-tasks",
                "30",
                "--backlog-tasks",
                "40",
                "--concurrency",
                "4",
                "--schema",
                schema,
            ],
        )
        .await?;
        let runs: Vec<_> = figures
            .iter()
            .map(|f| (f.workload, f.backend, f.tasks))
            .collect();
        assert_eq!(
            runs,
            [
                ("submit-single", backend, 20),
                ("floor-insert-single", backend, 20),
                ("submit-batch", backend, 50),
                ("floor-insert-batch", backend, 50),
                ("drain", backend, 30),
                ("floor-drain", backend, 30),
                ("drain-backlog", backend, 40),
            ]
        );
        assert_drains_and_floor_ratios(&figures)?;
        let manager = TaskManager::builder()
            .database(url.clone())
            .schema(schema)
            .build()
            .await?;
        assert!(manager.task_stats(None).await?.is_empty(), "{backend}");
        manager.stop().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_latency_in_one_process_uses_the_in_process_wake_up() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let figures = run_bench(
        &format!("sqlite:{}", dir.path().join("flow.db").display()),
        &[
            "--workloads",
            "latency",
            "--latency-tasks",
            "10",
            "--latency-interval-ms",
            "5",
            "--one-process",
        ],
    )
    .await?;
    assert_eq!(figures.len(), 1);
    assert_eq!(figures[0].one_process, Some(true));
    assert!(figures[0].latency_ms.is_some());
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
    Ok(())
}
