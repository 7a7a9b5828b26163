//! `backup_manager unit`: systemd user units for this home, with the absolute paths of the
//! binaries in use and of the home, as `podman generate systemd` writes them for a container.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::home::Home;
use crate::process;

/// Which unit to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `backup_service.service`: the long-running service, kept up by systemd.
    Service,
    /// `backup_service-once.service`: one look (`--once`), started by the timer.
    Once,
    /// `backup_service.timer`: starts the oneshot service at the start of every minute.
    Timer,
}

impl Kind {
    /// The unit's file name, as the README's commands install it.
    pub fn file_name(self) -> &'static str {
        match self {
            Kind::Service => "backup_service.service",
            Kind::Once => "backup_service-once.service",
            Kind::Timer => "backup_service.timer",
        }
    }
}

/// The unit of `kind` for `home`, running the `backup_service` that `start` would run.
///
/// With `metrics`, the service keeps that Prometheus text-format file.
pub fn for_home(home: &Home, kind: Kind, metrics: Option<&Path>) -> Result<String> {
    let binary = process::service_binary()?;
    let binary = std::fs::canonicalize(&binary)
        .with_context(|| format!("resolving {}", binary.display()))?;
    let metrics = metrics.map(std::path::absolute).transpose()?;
    render(kind, &binary, home.root(), metrics.as_deref())
}

/// The unit of `kind` running `binary` on `home` (both absolute), keeping `metrics`.
pub fn render(kind: Kind, binary: &Path, home: &Path, metrics: Option<&Path>) -> Result<String> {
    let mut exec = format!("{} --home {}", quote(binary)?, quote(home)?);
    if let Some(metrics) = metrics {
        exec.push_str(&format!(" --metrics {}", quote(metrics)?));
    }
    let name = kind.file_name();
    Ok(match kind {
        Kind::Service => format!(
            "# {name}: the backup service of {home}, kept running by systemd.\n\
             # Written by `backup_manager unit`; install with\n\
             #   backup_manager unit > ~/.config/systemd/user/{name}\n\
             #   systemctl --user daemon-reload\n\
             #   systemctl --user enable --now {name}\n\
             # Do not also use `backup_manager start` for this home: the pid lock refuses a\n\
             # second service. `backup_manager status` and `stop` still work on it.\n\
             \n\
             [Unit]\n\
             Description=Daily tar backups at scheduled times (backup_service)\n\
             \n\
             [Service]\n\
             ExecStart={exec}\n\
             # SIGTERM lets the backups already due (and their hooks) finish; give them time.\n\
             TimeoutStopSec=10min\n\
             Restart=on-failure\n\
             \n\
             [Install]\n\
             WantedBy=default.target\n",
            home = home.display(),
        ),
        Kind::Once => format!(
            "# {name}: one look at the schedules of {home}, started by backup_service.timer.\n\
             # Written by `backup_manager unit --once`; see `backup_manager unit --timer`.\n\
             \n\
             [Unit]\n\
             Description=Run the backups that are owed now (backup_service --once)\n\
             \n\
             [Service]\n\
             Type=oneshot\n\
             ExecStart={exec} --once\n\
             # Exit status 3: a backup done with warnings (a file that vanished or could not\n\
             # be read was left out); its archive is written, so the run is not a failure.\n\
             SuccessExitStatus={warnings}\n",
            home = home.display(),
            warnings = crate::job::WARNINGS_EXIT,
        ),
        Kind::Timer => format!(
            "# {name}: starts {once} at the start of every minute.\n\
             # Written by `backup_manager unit --timer`; install with\n\
             #   backup_manager unit --once > ~/.config/systemd/user/{once}\n\
             #   backup_manager unit --timer > ~/.config/systemd/user/{name}\n\
             #   systemctl --user daemon-reload\n\
             #   systemctl --user enable --now {name}\n\
             # Runs missed while the machine was off are made up at the next look, once: the\n\
             # state file in the home remembers what was served, so Persistent= is not needed.\n\
             \n\
             [Unit]\n\
             Description=Look at the backup schedules every minute\n\
             \n\
             [Timer]\n\
             OnCalendar=*-*-* *:*:00\n\
             AccuracySec=1s\n\
             Unit={once}\n\
             \n\
             [Install]\n\
             WantedBy=timers.target\n",
            once = Kind::Once.file_name(),
        ),
    })
}

/// A path as one word of a systemd command line or setting: double-quoted, with `\` and
/// `"` escaped, and `%` and `$` doubled so that systemd expands neither specifiers nor
/// variables in it. A path that is not UTF-8 or holds a control character is refused.
pub fn quote(path: &Path) -> Result<String> {
    let Some(text) = path.to_str() else {
        bail!(
            "{} is not UTF-8: a unit file cannot name it",
            path.display()
        );
    };
    if !path.is_absolute() {
        bail!("{text} is not an absolute path");
    }
    if text.chars().any(char::is_control) {
        bail!("{text:?} holds a control character: a unit file cannot name it");
    }
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '"' => quoted.push_str("\\\""),
            '%' => quoted.push_str("%%"),
            '$' => quoted.push_str("$$"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    Ok(quoted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_and_escaped() {
        assert_eq!(quote(Path::new("/a b/c")).unwrap(), "\"/a b/c\"");
        assert_eq!(quote(Path::new("/50%$x\"y")).unwrap(), "\"/50%%$$x\\\"y\"");
        assert!(quote(Path::new("relative")).is_err());
        assert!(quote(Path::new("/a\nb")).is_err());
    }

    #[test]
    fn service_unit_names_binary_and_home() {
        let unit = render(
            Kind::Service,
            Path::new("/opt/bin/backup_service"),
            Path::new("/h"),
            None,
        )
        .unwrap();
        assert!(unit.contains("\nExecStart=\"/opt/bin/backup_service\" --home \"/h\"\n"));
        assert!(unit.contains("\nWantedBy=default.target\n"));
        let once = render(Kind::Once, Path::new("/b"), Path::new("/h"), None).unwrap();
        assert!(once.contains("\nType=oneshot\n"));
        assert!(once.contains("\nExecStart=\"/b\" --home \"/h\" --once\n"));
        assert!(once.contains("\nSuccessExitStatus=3\n"));
        let timer = render(Kind::Timer, Path::new("/b"), Path::new("/h"), None).unwrap();
        assert!(timer.contains("\nUnit=backup_service-once.service\n"));
        let metrics = Some(Path::new("/var/lib/node_exporter/backup.prom"));
        let kept = render(Kind::Service, Path::new("/b"), Path::new("/h"), metrics).unwrap();
        assert!(kept.contains(
            "\nExecStart=\"/b\" --home \"/h\" --metrics \"/var/lib/node_exporter/backup.prom\"\n"
        ));
    }
}
