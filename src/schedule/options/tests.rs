use super::*;

fn parse(line: &str) -> Result<Options, OptionError> {
    let fields: Vec<&str> = if line.is_empty() {
        Vec::new()
    } else {
        line.split(';').collect()
    };
    Options::parse(&fields)
}

#[test]
fn no_field_is_the_default_and_writes_nothing() {
    let options = parse("").unwrap();
    assert!(options.is_default());
    assert_eq!(options.to_string(), "");
    assert!(!options.excludes_anything());
}

#[test]
fn every_option_parses_and_is_written_back_in_a_fixed_order() {
    let options = parse(
        "incremental;full-every=14;gitignore;exclude=*.log;zstd;exclude=/build/;\
         exclude-caches;keep=7",
    )
    .unwrap();
    assert_eq!(options.compression, Compression::Zstd);
    assert_eq!(options.keep, 7);
    assert_eq!(options.exclude, ["*.log", "/build/"]);
    assert!(options.exclude_caches && options.gitignore);
    assert_eq!(
        options.incremental,
        Some(Incremental {
            full_every_days: 14
        })
    );
    assert_eq!(
        options.to_string(),
        ";zstd;keep=7;exclude=*.log;exclude=/build/;exclude-caches;gitignore;incremental;\
         full-every=14"
    );
    // Defaults are not written: `keep=1` is a plain line, a week is the default chain.
    assert_eq!(parse("keep=1").unwrap().to_string(), "");
    assert_eq!(
        parse("incremental;full-every=7").unwrap().to_string(),
        ";incremental"
    );
    // Patterns may hold `=`, spaces inside, and anything glob syntax has.
    assert_eq!(
        parse("exclude=a=b c/**/[!x]?.{o,a}").unwrap().exclude,
        ["a=b c/**/[!x]?.{o,a}"]
    );
}

#[test]
fn a_field_not_understood_is_named() {
    for (line, field) in [
        ("y", "y"),
        ("ZSTD", "ZSTD"),
        ("keep", "keep"),
        ("exclude", "exclude"),
        ("gitignore=yes", "gitignore=yes"),
        ("xz", "xz"),
        ("", ""),
        ("zstd;", ""),
    ] {
        let fields: Vec<&str> = line.split(';').collect();
        assert_eq!(
            Options::parse(&fields),
            Err(OptionError::Unknown(field.into())),
            "{line:?}"
        );
    }
    let message = parse("kep=3").unwrap_err().to_string();
    assert!(
        message.starts_with("option \"kep=3\" is not understood"),
        "{message}"
    );
}

#[test]
fn bad_values_and_repeats_are_refused() {
    for bad in ["0", "1001", "-1", "+3", " 3", "3 ", "", "x", "99999999999"] {
        assert!(
            matches!(
                parse(&format!("keep={bad}")),
                Err(OptionError::Number { key: "keep", .. })
            ),
            "{bad:?}"
        );
    }
    assert_eq!(parse("keep=1000").unwrap().keep, 1000);
    assert_eq!(parse("keep=2;keep=2"), Err(OptionError::Repeated("keep")));
    assert_eq!(
        parse("gzip;zstd"),
        Err(OptionError::Repeated("compression"))
    );
    assert_eq!(
        parse("gitignore;gitignore"),
        Err(OptionError::Repeated("gitignore"))
    );
    assert_eq!(parse("full-every=3"), Err(OptionError::FullEveryAlone));
    assert!(parse("incremental;full-every=0").is_err());
    assert!(parse("incremental;full-every=367").is_err());
    assert_eq!(
        parse("keep=0").unwrap_err().to_string(),
        "keep=0 is not a number from 1 to 1000"
    );
}

#[test]
fn a_pattern_that_the_line_cannot_hold_is_refused() {
    for bad in ["", "a\tb", "a\rb", " a", "a "] {
        assert!(
            matches!(
                parse(&format!("exclude={bad}")),
                Err(OptionError::Pattern { .. })
            ),
            "{bad:?}"
        );
    }
    let mut options = Options::default();
    let flags = Options {
        exclude: vec!["a;b".into()],
        ..Options::default()
    };
    let err = options.combine(flags).unwrap_err();
    assert_eq!(
        err.to_string(),
        "exclude pattern \"a;b\" cannot be used: it holds a ';', which separates a \
         schedule's fields"
    );
    let err = parse("exclude=src/{a,b").unwrap_err();
    assert!(matches!(err, OptionError::Glob { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("exclude pattern \"src/{a,b\" is not a valid pattern: "),
        "{err}"
    );
    // The same pattern twice is kept once.
    assert_eq!(parse("exclude=a;exclude=a").unwrap().exclude, ["a"]);
}

#[test]
fn flags_add_to_the_line_and_may_not_contradict_it() {
    let mut options = parse("zstd;exclude=a").unwrap();
    options
        .combine(Options {
            compression: Compression::Zstd,
            keep: 5,
            exclude: vec!["b".into(), "a".into()],
            exclude_caches: true,
            ..Options::default()
        })
        .unwrap();
    assert_eq!(
        options.to_string(),
        ";zstd;keep=5;exclude=a;exclude=b;exclude-caches"
    );
    let mut gzip = parse("gzip").unwrap();
    let zstd = Options {
        compression: Compression::Zstd,
        ..Options::default()
    };
    assert_eq!(
        gzip.combine(zstd),
        Err(OptionError::Contradicts("compress"))
    );
    let mut kept = parse("keep=3").unwrap();
    let other = Options {
        keep: 4,
        ..Options::default()
    };
    assert_eq!(kept.combine(other), Err(OptionError::Contradicts("keep")));
    let mut chain = parse("incremental").unwrap();
    chain
        .combine(Options {
            incremental: Some(Incremental {
                full_every_days: 30,
            }),
            ..Options::default()
        })
        .unwrap();
    assert_eq!(chain.to_string(), ";incremental;full-every=30");
}

#[test]
fn recipients_are_fields_of_their_own_and_a_bad_one_is_refused() {
    let age = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
    let ssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN";
    let options = parse(&format!(
        "encrypt={ssh} me@box;zstd;encrypt={age};encrypt={age}"
    ))
    .unwrap();
    assert!(options.is_encrypted());
    assert_eq!(
        options.to_string(),
        format!(";zstd;encrypt={ssh};encrypt={age}")
    );
    assert!(!parse("zstd").unwrap().is_encrypted());
    let err = parse("encrypt=age1nope").unwrap_err();
    assert!(matches!(err, OptionError::Recipient(_)), "{err:?}");
    assert!(parse("encrypt=").is_err());
}

#[test]
fn invalid_patterns_are_told() {
    assert!(check_glob("*.log").is_ok());
    assert!(check_glob("!keep.log").is_ok());
    assert!(check_glob("/build/").is_ok());
    assert!(check_glob("a/**/b").is_ok());
    let e = check_glob("{a,b").unwrap_err().to_string();
    assert!(e.contains("unclosed"), "{e}");
    assert!(check_glob("[z-a]").is_err());
}
