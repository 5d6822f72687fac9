//! Tables for the terminal (comfy-table).

use comfy_table::modifiers::UTF8_ROUND_CORNERS;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};
use fib_flow::TaskRecord;

use crate::commands::bench::Figure;
use crate::commands::demo::HandlerSummary;

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .apply_modifier(UTF8_ROUND_CORNERS)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    table
}

fn number(value: impl ToString) -> Cell {
    Cell::new(value).set_alignment(CellAlignment::Right)
}

/// One row per handler: tasks, completed, permanently failed, attempts,
/// retries.
pub(crate) fn summary_table(rows: &[HandlerSummary]) -> Table {
    let mut table = table(&[
        "handler",
        "tasks",
        "completed",
        "permanently failed",
        "attempts",
        "retries",
    ]);
    for row in rows {
        table.add_row(vec![
            Cell::new(&row.name),
            number(row.tasks),
            number(row.completed),
            number(row.permanently_failed),
            number(row.attempts),
            number(row.retries),
        ]);
    }
    table
}

/// One row per task: id, handler, tag, status, attempts and its last error.
pub(crate) fn task_error_table(records: &[&TaskRecord]) -> Table {
    let mut table = table(&["id", "handler", "tag", "status", "attempts", "error"]);
    for record in records {
        table.add_row(vec![
            number(record.id),
            Cell::new(&record.name),
            Cell::new(record.tag.as_deref().unwrap_or("")),
            Cell::new(record.status),
            number(record.attempt),
            Cell::new(record.error.as_deref().unwrap_or("")),
        ]);
    }
    table
}

/// One row per benchmark run: workload, backend, tasks, batch size,
/// concurrency, seconds, tasks per second, that rate as a fraction of the
/// matching floor figure's, and the rate of each tenth (or the latency
/// percentiles).
pub(crate) fn bench_table(figures: &[Figure]) -> Table {
    let mut table = table(&[
        "workload",
        "backend",
        "tasks",
        "batch",
        "C",
        "seconds",
        "tasks/s",
        "of floor",
        "tenths (tasks/s)",
    ]);
    let optional = |value: Option<usize>| value.map(|v| v.to_string()).unwrap_or_default();
    for figure in figures {
        let detail = match figure.latency_ms {
            Some(l) => format!("{:.2} {:.2} {:.2}", l.p50, l.p99, l.max),
            None => {
                let tenths: Vec<String> = figure.tenths.iter().map(|r| format!("{r:.0}")).collect();
                tenths.join(" ")
            }
        };
        table.add_row(vec![
            Cell::new(figure.workload),
            Cell::new(figure.backend),
            number(figure.tasks),
            number(optional(figure.batch)),
            number(optional(figure.concurrency)),
            number(format!("{:.2}", figure.seconds)),
            number(format!("{:.0}", figure.rate)),
            number(
                figure
                    .floor_ratio
                    .map(|r| format!("{r:.2}"))
                    .unwrap_or_default(),
            ),
            Cell::new(detail),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_table_shows_the_fraction_of_the_floor() {
        let engine = Figure {
            workload: "drain",
            backend: "sqlite",
            tasks: 100,
            batch: None,
            concurrency: Some(10),
            seconds: 1.0,
            rate: 100.0,
            tenths: Vec::new(),
            latency_ms: None,
            one_process: None,
            floor_ratio: Some(0.625),
        };
        let floor = Figure {
            workload: "floor-drain",
            rate: 160.0,
            floor_ratio: None,
            ..engine.clone()
        };
        let text = bench_table(&[engine, floor]).to_string();
        assert!(text.contains("of floor"), "{text}");
        assert!(text.contains("0.62"), "{text}");
    }
}
