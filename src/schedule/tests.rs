use super::*;

fn parse(line: &str) -> Result<Schedule, Reason> {
    line.parse::<Schedule>().map_err(|e| e.reason)
}

#[test]
fn parses_the_walkthrough_schedules() {
    let s = parse("test;16:07;backup_test").unwrap();
    assert_eq!(s.path, "test");
    assert_eq!(s.time, TimeOfDay::new(16, 7).unwrap());
    assert_eq!(s.name, "backup_test");
    assert_eq!(s.archive_file_name(), "backup_test.tar");
    assert_eq!(s.to_string(), "test;16:07;backup_test");
}

#[test]
fn accepts_the_edges_of_the_day_and_odd_but_legal_paths() {
    assert_eq!(parse("a;00:00;x").unwrap().time.to_string(), "00:00");
    assert_eq!(parse("a;23:59;x").unwrap().time.to_string(), "23:59");
    assert_eq!(parse("/abs/dir;12:00;x").unwrap().path, "/abs/dir");
    assert_eq!(parse("my docs;12:00;x y").unwrap().name, "x y");
    assert_eq!(parse(".;12:00;all").unwrap().path, ".");
    assert_eq!(parse("../sibling;12:00;sib").unwrap().path, "../sibling");
    assert_eq!(
        parse("a;12:00;naïve-ünïcode").unwrap().name,
        "naïve-ünïcode"
    );
}

#[test]
fn refuses_every_malformed_example_of_the_spec() {
    assert_eq!(parse("test;"), Err(Reason::FieldCount(2)));
    assert_eq!(parse("a;25:00;x"), Err(Reason::TimeRange("25:00".into())));
    assert_eq!(parse("a;7:5;x"), Err(Reason::TimeFormat("7:5".into())));
    assert_eq!(parse("a;07:05;../x"), Err(Reason::SlashInName));
    assert_eq!(
        parse("a;07:05;x;y"),
        Err(Reason::Option(OptionError::Unknown("y".into())))
    );
}

#[test]
fn a_fourth_field_names_the_compression_and_round_trips() {
    let s = parse("docs;03:00;docs;zstd").unwrap();
    assert_eq!(s.compression(), Compression::Zstd);
    assert_eq!(s.archive_file_name(), "docs.tar.zst");
    assert_eq!(s.to_string(), "docs;03:00;docs;zstd");
    let s = parse("docs;03:00;docs;gzip").unwrap();
    assert_eq!(s.archive_file_name(), "docs.tar.gz");
    assert_eq!(s.to_string(), "docs;03:00;docs;gzip");
    let s = parse("docs;03:00;docs").unwrap();
    assert_eq!(s.compression(), Compression::None);
    assert!(s.options.is_default());
    assert_eq!(s.to_string(), "docs;03:00;docs");
    for bad in ["", "none", "tar", "ZSTD", "xz", " gzip"] {
        assert_eq!(
            parse(&format!("a;01:00;x;{bad}")),
            Err(Reason::Option(OptionError::Unknown(bad.into()))),
            "{bad:?}"
        );
    }
    assert_eq!(
        parse("a;01:00;x;zstd;"),
        Err(Reason::Option(OptionError::Unknown(String::new())))
    );
    // Options after a compression, written back in a fixed order.
    let s = parse("docs;03:00;docs;keep=3;zstd;exclude=target/").unwrap();
    assert_eq!(s.options.keep, 3);
    assert_eq!(s.archive_file_name(), "docs.tar.zst");
    assert_eq!(s.to_string(), "docs;03:00;docs;zstd;keep=3;exclude=target/");
}

#[test]
fn refuses_bad_fields() {
    assert_eq!(parse(""), Err(Reason::FieldCount(1)));
    assert_eq!(parse("test"), Err(Reason::FieldCount(1)));
    assert_eq!(parse(";12:00;x"), Err(Reason::EmptyPath));
    assert_eq!(parse("a;12:00;"), Err(Reason::EmptyName));
    assert_eq!(parse("a;12:00;."), Err(Reason::DotName));
    assert_eq!(parse("a;12:00;.."), Err(Reason::DotName));
    assert_eq!(parse("a;12:00;.hidden"), Err(Reason::DotName));
    assert_eq!(parse("a;12:00;x\ty"), Err(Reason::ControlCharInName));
    assert_eq!(parse("a;12:00;x "), Err(Reason::SpaceAroundName));
    assert_eq!(parse("a;12:00; x"), Err(Reason::SpaceAroundName));
    assert!(parse("a;12:00;my docs").is_ok());
    assert_eq!(parse("a;12:00;x.2026-11-22_0200"), Err(Reason::DatedName));
    assert_eq!(parse("a;12:00;x.2026-11-22_0200-3"), Err(Reason::DatedName));
    assert!(parse("a;12:00;x.2026-11-22").is_ok());
    assert!(parse("a;12:00;v1.2").is_ok());
    let long = "n".repeat(MAX_NAME_LEN + 1);
    assert_eq!(
        parse(&format!("a;12:00;{long}")),
        Err(Reason::NameTooLong(MAX_NAME_LEN + 1))
    );
    assert!(parse(&format!("a;12:00;{}", &long[1..])).is_ok());
    assert_eq!(parse("a\r;12:00;x"), Err(Reason::ControlCharInPath));
    assert_eq!(parse("a;12:60;x"), Err(Reason::TimeRange("12:60".into())));
    assert_eq!(parse("a;24:00;x"), Err(Reason::TimeRange("24:00".into())));
    for bad in [
        "12:0",
        "1200",
        "12-00",
        " 12:00",
        "12:00 ",
        "+1:00",
        "12:+1",
        "١٢:٠٠",
    ] {
        assert_eq!(
            parse(&format!("a;{bad};x")),
            Err(Reason::TimeFormat(bad.into())),
            "{bad}"
        );
    }
}

#[test]
fn a_huge_line_is_shown_cut() {
    let huge = format!("{};07:00;x;{}", "p".repeat(1 << 20), "z".repeat(1 << 20));
    let message = huge.parse::<Schedule>().unwrap_err().to_string();
    assert!(message.len() < 1000, "{} bytes", message.len());
    assert!(
        message.starts_with(&format!(
            "malformed schedule: {}... ({} bytes in all)",
            "p".repeat(300),
            huge.len()
        )),
        "{message}"
    );
    assert!(
        message.ends_with(&format!(
            "(option \"{}... ({} bytes in all)\" is not understood (options: days=DAYS, \
             gzip, zstd, keep=N, keep-hourly=N, keep-daily=N, keep-weekly=N, \
             keep-monthly=N, keep-yearly=N, keep-within=DURATION, exclude=PATTERN, \
             exclude-caches, gitignore, exclude-from=FILE, one-file-system, \
             exclude-larger-than=SIZE, incremental, full-every=DAYS, encrypt=KEY))",
            "z".repeat(300),
            1 << 20
        )),
        "{message}"
    );
    // Cut at a character boundary, whatever the bytes.
    let wide = format!("{};07:00", "é".repeat(400));
    assert!(
        wide.parse::<Schedule>()
            .unwrap_err()
            .to_string()
            .contains("é... (")
    );
}

#[test]
fn a_time_not_written_hh_mm_gets_a_suggestion_when_one_is_clear() {
    let message = |line: &str| line.parse::<Schedule>().unwrap_err().to_string();
    assert!(
        message("a;7:5;x").ends_with("(time \"7:5\" is not HH:MM; did you mean 07:05?)"),
        "{}",
        message("a;7:5;x")
    );
    assert!(message("a;7:30;x").contains("did you mean 07:30?"));
    assert!(message("a;12:0;x").contains("did you mean 12:00?"));
    for unclear in [
        "a;1200;x", "a;7;x", "a;25:1;x", "a;7:60;x", "a;+7:5;x", "a;7:5 ;x",
    ] {
        assert!(!message(unclear).contains("did you mean"), "{unclear}");
    }
}

#[test]
fn the_error_names_the_line_and_the_reason() {
    let err = "test;".parse::<Schedule>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed schedule: test; (expected PATH;HH:MM;NAME[;OPTION]..., found 2 fields)"
    );
}
