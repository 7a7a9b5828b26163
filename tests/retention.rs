//! Calendar retention under a fake clock: 90 days of daily backups, some days missed, each
//! schedule pruned by its policy at every backup. The sets kept are written out here by
//! hand from restic's documented meaning of `forget --keep-*` (the newest generation of
//! each of the last N periods that have one, the oldest as well while a rule has periods
//! left; `--keep-within` counted from the newest), not computed by the code under test.

mod common;

use chrono::{Duration, NaiveDate};
use common::TestHome;
use common::clock::{Clock, libfaketime};

/// The days the machine was off: a whole ISO week in October, three days and a Friday in
/// November.
fn missed(day: NaiveDate) -> bool {
    let between = |a: (u32, u32), b: (u32, u32)| {
        let d = |(m, d)| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        day >= d(a) && day <= d(b)
    };
    between((10, 12), (10, 18)) || between((11, 22), (11, 24)) || between((11, 27), (11, 27))
}

/// What `backups` lists of NAME: NAME.tar (the newest), then the dated ones of 2026.
fn listing(name: &str, older: &[&str]) -> Vec<String> {
    std::iter::once(format!("{name}.tar"))
        .chain(
            older
                .iter()
                .map(|day| format!("{name}.2026-{day}_0200.tar")),
        )
        .collect()
}

fn listed(home: &TestHome, name: &str) -> Vec<String> {
    let out = home.manager(&["backups"]);
    out.success();
    out.stdout_lines()
        .into_iter()
        .filter(|l| l.starts_with(&format!("{name}.")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn ninety_days_of_daily_backups_keep_what_each_policy_says() {
    let Some(lib) = libfaketime() else { return };
    let home = TestHome::new();
    home.write("src/f", "data");
    let clock = Clock::new(lib, &home, "2026-08-31 12:00:00");
    let policies = [
        ("daily", "--keep-daily 7"),
        ("weekly", "--keep-weekly 4"),
        ("monthly", "--keep-monthly 3"),
        ("monthly6", "--keep-monthly 6"),
        ("mixed", "--keep-daily 3 --keep-weekly 2 --keep-monthly 2"),
        ("within", "--keep-within 2w"),
        ("chain", "--incremental --keep-daily 3"),
    ];
    for (name, flags) in policies {
        let mut args = vec!["create"];
        args.extend(flags.split(' '));
        let line = format!("src;02:00;{name}");
        args.push(&line);
        let (code, _) = clock.manager(&home, &args);
        assert_eq!(code, Some(0), "{args:?}");
    }
    let first = NaiveDate::from_ymd_opt(2026, 9, 1).unwrap();
    for offset in 0..90 {
        let day = first + Duration::days(offset);
        if missed(day) {
            continue;
        }
        home.write("src/f", format!("data of {day}"));
        clock.set(&format!("{day} 02:00:30"));
        clock.service_once(&home);
    }
    let expected = [
        // The last 7 days that have a backup.
        (
            "daily",
            vec!["11-28", "11-26", "11-25", "11-21", "11-20", "11-19"],
        ),
        // The newest of the last 4 ISO weeks (Monday to Sunday) that have one.
        ("weekly", vec!["11-21", "11-15", "11-08"]),
        // The newest of each of the last 3 months.
        ("monthly", vec!["10-31", "09-30"]),
        // Only 3 months have one: those, and the oldest of all.
        ("monthly6", vec!["10-31", "09-30", "09-01"]),
        // Days 29, 28, 26; weeks: 29, 21; months: 29, October's 31.
        ("mixed", vec!["11-28", "11-26", "11-21", "10-31"]),
        // Every one made within 14 days of the newest (after 15 November, 02:00).
        (
            "within",
            vec![
                "11-28", "11-26", "11-25", "11-21", "11-20", "11-19", "11-18", "11-17", "11-16",
            ],
        ),
        // The last 3 days, and the full of their chain, 25 November (the first backup 7
        // days or more after the full of 16 November).
        ("chain", vec!["11-28", "11-26", "11-25"]),
    ];
    for (name, older) in expected {
        common::assert_same_lines(&listed(&home, name), &listing(name, &older), name);
    }
    // The chain restores as of its newest.
    let dest = home.path().join("restored");
    home.manager(&["restore", "chain", dest.to_str().unwrap()])
        .success();
    assert_eq!(
        std::fs::read_to_string(dest.join("src/f")).unwrap(),
        "data of 2026-11-29"
    );
}

/// `forget --dry-run` says what a policy keeps and why and removes nothing; `forget`
/// removes the rest.
#[test]
fn forget_shows_what_a_policy_keeps_and_why_then_prunes() {
    let Some(lib) = libfaketime() else { return };
    let home = TestHome::new();
    home.write("src/f", "data");
    let clock = Clock::new(lib, &home, "2026-11-01 12:00:00");
    let (code, _) = clock.manager(&home, &["create", "--keep", "30", "src;02:00;code"]);
    assert_eq!(code, Some(0));
    for day in 2..=12 {
        clock.set(&format!("2026-11-{day:02} 02:00:30"));
        clock.service_once(&home);
    }
    assert_eq!(listed(&home, "code").len(), 11);
    home.write(
        "backup_schedules.txt",
        "src;02:00;code;keep-daily=3;keep-weekly=2\n",
    );
    let before = listed(&home, "code");
    let out = home.manager(&["forget", "code", "--dry-run"]);
    out.success();
    common::assert_same_lines(
        &out.stdout_lines(),
        &[
            "keep    code.tar  (keep, keep-daily, keep-weekly)",
            "keep    code.2026-11-11_0200.tar  (keep-daily)",
            "keep    code.2026-11-10_0200.tar  (keep-daily)",
            "remove  code.2026-11-09_0200.tar",
            "keep    code.2026-11-08_0200.tar  (keep-weekly)",
            "remove  code.2026-11-07_0200.tar",
            "remove  code.2026-11-06_0200.tar",
            "remove  code.2026-11-05_0200.tar",
            "remove  code.2026-11-04_0200.tar",
            "remove  code.2026-11-03_0200.tar",
            "remove  code.2026-11-02_0200.tar",
        ],
        "forget --dry-run",
    );
    assert_eq!(
        out.stderr,
        "backup_manager: code: 4 kept, 7 to remove (keep=1, keep-daily=3, keep-weekly=2)\n"
    );
    assert_eq!(listed(&home, "code"), before, "a dry run removed something");
    let out = home.manager(&["forget", "code"]);
    out.success();
    assert_eq!(
        listed(&home, "code"),
        listing("code", &["11-11", "11-10", "11-08"])
    );
    let log = home.manager_log();
    assert_eq!(
        common::count_messages(&log, "Removed backups/code.2026-11-02_0200.tar"),
        1,
        "{log:#?}"
    );
    let out = home.manager(&["forget", "nope"]);
    assert!(out.failure(1).contains("no schedule named \"nope\""));
}

/// The sets kept of incremental chains (a full every 7 days, the default) under weekly
/// and monthly rules: each generation a rule keeps, and every one back to its chain's full,
/// worked out by hand for 40 daily backups from Tuesday 1 September (fulls on the 1st,
/// 8th, 15th, 22nd and 29th of September and on 6 October).
#[test]
fn chains_under_weekly_and_monthly_rules_keep_whole_chains() {
    let Some(lib) = libfaketime() else { return };
    let home = TestHome::new();
    home.write("src/f", "data");
    let clock = Clock::new(lib, &home, "2026-08-31 12:00:00");
    for (name, flags) in [
        ("weekly", "--keep-weekly 3"),
        ("monthly", "--keep-monthly 2"),
    ] {
        let line = format!("src;02:00;{name}");
        let mut args = vec!["create", "--incremental"];
        args.extend(flags.split(' '));
        args.push(&line);
        assert_eq!(clock.manager(&home, &args).0, Some(0), "{args:?}");
    }
    let first = NaiveDate::from_ymd_opt(2026, 9, 1).unwrap();
    for offset in 0..40 {
        let day = first + Duration::days(offset);
        home.write("src/f", format!("data of {day}"));
        home.write(&format!("src/day-{day}"), "new that day");
        clock.set(&format!("{day} 02:00:30"));
        clock.service_once(&home);
    }
    let expected = [
        // Newest of the ISO weeks of 5 October (the 10th), 28 September (4 October) and
        // 21 September (the 27th), each with its chain back to its full.
        (
            "weekly",
            vec![
                "10-09", "10-08", "10-07", "10-06", // the 10th's chain
                "10-04", "10-03", "10-02", "10-01", "09-30", "09-29", // 4 October's
                "09-27", "09-26", "09-25", "09-24", "09-23", "09-22", // the 27th's
            ],
        ),
        // Newest of October (the 10th) and of September (the 30th): their chains.
        (
            "monthly",
            vec!["10-09", "10-08", "10-07", "10-06", "09-30", "09-29"],
        ),
    ];
    for (name, older) in expected {
        common::assert_same_lines(&listed(&home, name), &listing(name, &older), name);
    }
    // Each generation a rule keeps restores to the tree as it was that day.
    for (at, day) in [
        ("2026-10-04_0200", "2026-10-04"),
        ("2026-09-27_0200", "2026-09-27"),
    ] {
        let dest = home.path().join(format!("restored-{day}"));
        home.manager(&["restore", "weekly", dest.to_str().unwrap(), "--at", at])
            .success();
        assert_eq!(
            std::fs::read_to_string(dest.join("src/f")).unwrap(),
            format!("data of {day}")
        );
        assert!(dest.join(format!("src/day-{day}")).exists());
        let next = NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap() + Duration::days(1);
        assert!(!dest.join(format!("src/day-{next}")).exists());
    }
}
