//! `status` shows a backup running now, from the file the backup keeps in the home while
//! it runs; a stale or forged one is not shown.

mod common;

use std::fs::{self, File};

use common::{TestHome, run_paused};

#[test]
fn status_shows_a_backup_while_it_runs_and_not_after() {
    let home = TestHome::new();
    home.write("data/aa/a", "a");
    home.write("data/zz/z", "z");
    home.manager(&["create", "data;02:00;d"]).success();
    let marker = home.path().join("paused");
    let stderr = File::create(home.path().join("run.err")).unwrap();
    let mut child = run_paused(&home, "enter-zz", &marker, stderr);
    let out = home.manager(&["status"]);
    let running = out
        .stdout_lines()
        .into_iter()
        .find(|l| l.starts_with("   running:   since "))
        .unwrap_or_else(|| panic!("no running line: {out:#?}"))
        .to_owned();
    assert!(
        running.ends_with(&format!(" so far (pid {}, by hand)", child.pid())),
        "{running}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&home.manager(&["status", "--json"]).stdout).unwrap();
    let shown = &json["schedules"][0]["running"];
    assert_eq!(shown["pid"], child.pid(), "{json:#}");
    assert_eq!(shown["schedule"], "data;02:00;d");
    // A copy of its file under a pid that is not a backup of this home is not believed.
    let file = fs::read_dir(home.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.starts_with(".backup_running."))
        .expect("the running file");
    let record = fs::read_to_string(home.path().join(&file)).unwrap();
    let forged = record.replace(&format!("\"pid\":{}", child.pid()), "\"pid\":1");
    fs::write(home.path().join(".backup_running.1.d"), forged).unwrap();
    fs::remove_file(&marker).unwrap();
    assert!(child.wait().success());
    let out = home.manager(&["status"]);
    assert!(!out.stdout.contains("running:"), "{out:#?}");
    assert!(
        !home.path().join(&file).exists(),
        "the file goes when the backup ends"
    );
}
