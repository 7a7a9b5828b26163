//! A test-only pause, so that a test can act at a known step of a backup (kill it, or
//! change the tree under it): in debug builds, `BACKUP_TEST_PAUSE=STEP:FILE` makes the
//! backup create FILE when it reaches STEP and wait there until FILE is removed.
//! Release builds have none.

/// Pauses at `step` if asked to (see the module's comment).
pub fn at(step: &str) {
    #[cfg(debug_assertions)]
    if let Ok(spec) = std::env::var("BACKUP_TEST_PAUSE") {
        if let Some((at, marker)) = spec.split_once(':') {
            if at == step && std::fs::write(marker, step).is_ok() {
                while std::path::Path::new(marker).exists() {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}
