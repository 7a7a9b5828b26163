//! Failures that cannot be missed: a schedule with no successful backup for longer than its
//! period and a grace is overdue in `status`, whatever the reason; and the Prometheus
//! metrics file that `run` and the service keep.

mod common;

use std::fs;
use std::process::Command;

use common::TestHome;
use common::clock::{Clock, libfaketime};

/// Checks that `text` is valid Prometheus text exposition format line by line: `# HELP`
/// and `# TYPE` comments, and samples `name{label="value",...} number`.
fn assert_prometheus_text(text: &str) {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    assert!(text.ends_with('\n'), "{text}");
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            let kind = words.next().unwrap();
            assert!(kind == "HELP" || kind == "TYPE", "{line}");
            assert!(name_ok(words.next().unwrap()), "{line}");
            if kind == "TYPE" {
                assert_eq!(words.next(), Some("gauge"), "{line}");
            }
            continue;
        }
        let (metric, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        value.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
        let (name, labels) = metric.split_once('{').unwrap_or((metric, "}"));
        assert!(name_ok(name), "{line}");
        let labels = labels.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
        let mut rest = labels;
        while !rest.is_empty() {
            let (label, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
            assert!(name_ok(label), "{line}");
            // The value runs to the first quote not escaped.
            let mut end = None;
            let mut escaped = false;
            for (i, c) in after.char_indices() {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.unwrap_or_else(|| panic!("{line}"));
            rest = after[end + 1..]
                .strip_prefix(',')
                .unwrap_or(&after[end + 1..]);
        }
    }
}

#[test]
fn run_and_the_service_keep_a_metrics_file_of_valid_prometheus_text() {
    let home = TestHome::new();
    home.write("src/f", "data");
    home.manager(&["create", "src;03:00;code"]).success();
    home.manager(&["create", "missing;03:00;gone"]).success();
    let metrics = home.path().join("backup.prom");
    home.manager(&["run", "0", "--metrics", metrics.to_str().unwrap()])
        .success();
    let out = Command::new(common::MANAGER)
        .args(["--home", home.path().to_str().unwrap(), "run", "1"])
        .env("BACKUP_METRICS", &metrics)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = fs::read_to_string(&metrics).unwrap();
    assert_prometheus_text(&text);
    let size = fs::metadata(home.archive_path("code.tar")).unwrap().len();
    for line in [
        format!("backup_last_archive_bytes{{name=\"code\",time=\"03:00\"}} {size}"),
        "backup_last_entries{name=\"code\",time=\"03:00\"} 2".to_owned(),
        "backup_last_result{name=\"code\",time=\"03:00\",result=\"ok\"} 1".to_owned(),
        "backup_last_result{name=\"gone\",time=\"03:00\",result=\"failed\"} 1".to_owned(),
        "backup_last_result{name=\"gone\",time=\"03:00\",result=\"ok\"} 0".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
    }
    // The failed one has an attempt but no success.
    assert!(text.contains("backup_last_attempt_timestamp_seconds{name=\"gone\""));
    assert!(!text.contains("backup_last_success_timestamp_seconds{name=\"gone\""));
    assert!(text.contains("backup_last_success_timestamp_seconds{name=\"code\""));
    // The file is private to no one: the exporter reads it.
    let mode = common::mode(&metrics);
    assert_eq!(mode, 0o644);

    // The service writes it too, after each backup.
    fs::remove_file(&metrics).unwrap();
    let now = chrono::Local::now().format("%H:%M").to_string();
    home.manager(&["create", &format!("src;{now};now")])
        .success();
    let status = Command::new(common::SERVICE)
        .args(["--home", home.path().to_str().unwrap(), "--once"])
        .arg("--metrics")
        .arg(&metrics)
        .status()
        .unwrap();
    assert!(status.success() || status.code() == Some(3), "{status}");
    if common::still_in(&now) {
        let text = fs::read_to_string(&metrics).unwrap();
        assert_prometheus_text(&text);
        assert!(text.contains("name=\"now\""), "{text}");
    }
}

#[test]
fn a_schedule_with_no_success_for_26_hours_is_overdue_whatever_the_reason() {
    let Some(lib) = libfaketime() else { return };
    let home = TestHome::new();
    home.write("src/f", "data");
    let clock = Clock::new(lib, &home, "2026-11-01 12:00:00");
    let (code, _) = clock.manager(&home, &["create", "src;02:00;code"]);
    assert_eq!(code, Some(0));
    clock.set("2026-11-02 02:00:10");
    clock.service_once(&home);
    // Status exits 3 (no service running) whatever else holds; the text tells overdue.
    let overdue = |at: &str| {
        clock.set(at);
        let (code, out) = clock.manager(&home, &["status"]);
        assert_eq!(code, Some(3), "{out}");
        out.contains("   overdue:   no successful backup since 02/11/2026 02:00")
    };
    assert!(
        !overdue("2026-11-03 03:59:00"),
        "within the day and its grace"
    );
    assert!(
        overdue("2026-11-03 04:00:30"),
        "26 hours after the last success"
    );
    // A failing run does not help: the source is gone.
    fs::remove_file(home.path().join("src/f")).unwrap();
    fs::remove_dir(home.path().join("src")).unwrap();
    clock.set("2026-11-04 02:00:10");
    clock.service_once(&home);
    assert!(overdue("2026-11-04 12:00:00"));
    // Back, and run: no longer overdue; the JSON says so too.
    home.write("src/f", "data");
    clock.set("2026-11-04 12:01:00");
    let (code, _) = clock.manager(&home, &["run", "0"]);
    assert_eq!(code, Some(0));
    assert!(!overdue("2026-11-04 12:02:00"));
    let (_, json) = clock.manager(&home, &["status", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["schedules"][0]["overdue"], false);
    clock.set("2026-11-06 04:00:30");
    let (_, json) = clock.manager(&home, &["status", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["schedules"][0]["overdue"], true);
}
