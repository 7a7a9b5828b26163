//! The one rule for a NAME used twice in the schedule file, for `create`, `list`, `run`
//! and the service alike.

use super::NotUtf8;
use crate::schedule::Schedule;

/// Why a schedule clashes with the one at `index`, `line` (see [`Schedule::clashes_with`]).
///
/// One NAME, one archive series: a second compression would write a second file beside
/// the first, and `verify NAME` could not tell which was meant; another PATH or other
/// options would fight over the same archives.
pub fn name_taken(name: &str, index: usize, line: &str) -> String {
    format!(
        "archive name {name:?} is already used by schedule {index} ({line}) for another \
         PATH or other options"
    )
}

/// The schedules of a file, taken in order, each checked against those taken before it:
/// a line whose NAME an earlier schedule uses for another PATH or other options is not
/// taken (the service skips it, `list` reports it), exactly as `create` would refuse it.
#[derive(Debug, Default)]
pub struct Admitted {
    first: std::collections::HashMap<String, (usize, Schedule, String)>,
}

impl Admitted {
    /// Takes the schedule at `index` (written `line`), or says why it clashes.
    pub fn admit(&mut self, index: usize, schedule: &Schedule, line: &str) -> Result<(), String> {
        match self.first.get(&schedule.name) {
            Some((at, first, first_line)) if schedule.clashes_with(first) => {
                Err(name_taken(&schedule.name, *at, first_line))
            }
            Some(_) => Ok(()),
            None => {
                let first = (index, schedule.clone(), line.to_owned());
                self.first.insert(schedule.name.clone(), first);
                Ok(())
            }
        }
    }
}

/// Why the schedule `schedule` at `index` of `lines` is skipped, if it clashes with an
/// earlier line ([`Admitted`]).
pub fn clash_at(
    lines: &[Result<String, NotUtf8>],
    index: usize,
    schedule: &Schedule,
) -> Option<String> {
    let mut admitted = Admitted::default();
    for (at, line) in lines.iter().enumerate().take(index) {
        if let Some(earlier) = line
            .as_deref()
            .ok()
            .and_then(|l| l.parse::<Schedule>().ok())
        {
            let _ = admitted.admit(at, &earlier, line.as_deref().unwrap_or_default());
        }
    }
    admitted.admit(index, schedule, &schedule.to_string()).err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::temporary as home;
    use crate::schedule_file::append;

    fn schedule(line: &str) -> Schedule {
        line.parse().unwrap()
    }

    #[test]
    fn a_line_clashes_with_the_first_schedule_of_its_name_as_create_would_refuse_it() {
        let lines = [
            "a;01:00;x",
            "b;02:00;x",
            "a;03:00;x",
            "a;04:00;x;zstd",
            "a;01:00;x",
        ];
        let mut admitted = Admitted::default();
        let clashes: Vec<Option<String>> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| admitted.admit(i, &schedule(l), l).err())
            .collect();
        let taken = name_taken("x", 0, "a;01:00;x");
        let some = Some(taken.clone());
        assert_eq!(clashes, [None, some.clone(), None, some.clone(), None]);
        let read: Vec<Result<String, NotUtf8>> = lines.iter().map(|l| Ok(l.to_string())).collect();
        assert_eq!(clash_at(&read, 3, &schedule(lines[3])), some);
        assert_eq!(clash_at(&read, 2, &schedule(lines[2])), None);
        // What create says of the same line, by the same rule.
        let (_dir, home) = home();
        append(&home, &schedule(lines[0])).unwrap();
        let err = append(&home, &schedule(lines[1])).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("refusing schedule b;02:00;x: {}", taken)
        );
    }
}
