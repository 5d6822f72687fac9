//! The command line, driven through the library's `run` (no child process).

use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use fib_flow::{TaskFilter, TaskManager, TaskStatus};
use fib_flow_cli::commands::demo::{self, DemoOptions, ProgressMode, CHARGE_CARD, SEND_EMAIL};
use fib_flow_cli::{run, Cli, Command};

#[test]
fn the_command_line_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn demo_defaults_and_global_database_flag() -> anyhow::Result<()> {
    let cli = Cli::try_parse_from(["fib-flow", "demo", "--database", "sqlite:x.db"])?;
    assert_eq!(cli.database, "sqlite:x.db");
    let Command::Demo(args) = &cli.command;
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
