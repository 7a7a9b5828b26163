use super::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn last_lines_keeps_the_end_on_one_line() {
    let out: String = (1..=15).map(|i| format!("line {i}\n")).collect();
    let tail = last_lines(out.as_bytes());
    assert!(tail.starts_with("line 6 | line 7"), "{tail}");
    assert!(tail.ends_with("line 15"), "{tail}");
    assert_eq!(last_lines(b"\n\n"), "");
}

#[test]
fn no_hook_file_runs_nothing() {
    let (_dir, home) = crate::home::temporary();
    assert_eq!(run(&home, Hook::AfterBackup, &[], true), Ended::Absent);
}

#[test]
fn group_writable_hook_is_refused() {
    let (_dir, home) = crate::home::temporary();
    let file = path(&home, Hook::AfterBackup);
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::set_permissions(file.parent().unwrap(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(&file, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o775)).unwrap();
    let err = check(&file).unwrap_err();
    assert!(format!("{err:#}").contains("writable by group"), "{err:#}");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).unwrap();
    check(&file).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    assert!(format!("{:#}", check(&file).unwrap_err()).contains("not executable"));
}
