//! The lines of the schedule file a [`Which`] means: one INDEX, or every line of a NAME.

use super::{NotUtf8, no_such_index};
use crate::schedule::{Schedule, Which};

/// How many lines a refusal lists, at most.
const LISTED: usize = 5;

/// The indexes of the lines `which` means, in order: the line at an INDEX (valid or not,
/// so that a bad line can be deleted), or every valid line whose NAME it is. Fails with a
/// sentence when there is none.
pub fn choose(lines: &[Result<String, NotUtf8>], which: &Which) -> Result<Vec<usize>, String> {
    match which {
        Which::Index(index) if *index < lines.len() => Ok(vec![*index]),
        Which::Index(index) => Err(no_such_index(*index, lines.len())),
        Which::Name(name) => {
            let named: Vec<usize> = lines
                .iter()
                .enumerate()
                .filter(|(_, line)| schedule_of(line).is_some_and(|s| s.name == *name))
                .map(|(index, _)| index)
                .collect();
            if named.is_empty() {
                // A line that names it but does not parse is the likely meaning.
                let bad = lines.iter().position(|line| {
                    schedule_of(line).is_none()
                        && line
                            .as_deref()
                            .is_ok_and(|l| l.split(';').nth(2).map(str::trim) == Some(name))
                });
                if let Some(at) = bad {
                    return Err(format!(
                        "schedule {name:?} is on a bad line, index {at}, which the service \
                         skips: `list` says why; fix it by hand or `delete {at}`"
                    ));
                }
                return Err(format!(
                    "no schedule is named {name:?} (`list` shows the schedules; an argument \
                     of digits only is an INDEX)"
                ));
            }
            Ok(named)
        }
    }
}

/// The one line `which` means; a NAME on several lines is refused, listing them, so that
/// one INDEX can be given instead.
pub fn choose_one(lines: &[Result<String, NotUtf8>], which: &Which) -> Result<usize, String> {
    let chosen = choose(lines, which)?;
    if let [index] = chosen[..] {
        return Ok(index);
    }
    let mut listed: Vec<String> = chosen
        .iter()
        .take(LISTED)
        .map(|&i| format!("index {i} ({})", lines[i].as_deref().unwrap_or_default()))
        .collect();
    if chosen.len() > LISTED {
        listed.push(format!("and {} more", chosen.len() - LISTED));
    }
    Err(format!(
        "{which} is on {} lines: {}; give the INDEX of one",
        chosen.len(),
        listed.join(", ")
    ))
}

fn schedule_of(line: &Result<String, NotUtf8>) -> Option<Schedule> {
    line.as_deref().ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Vec<Result<String, NotUtf8>> {
        text.iter().map(|l| Ok(l.to_string())).collect()
    }

    #[test]
    fn a_name_means_each_of_its_lines_and_one_is_asked_for_where_it_must() {
        let file = lines(&["a;01:00;p", "junk", "b;02:00;q", "a;13:00;p"]);
        let name = |n: &str| Which::Name(n.to_owned());
        assert_eq!(choose(&file, &name("p")), Ok(vec![0, 3]));
        assert_eq!(choose(&file, &name("q")), Ok(vec![2]));
        assert_eq!(choose(&file, &Which::Index(1)), Ok(vec![1]));
        assert_eq!(choose_one(&file, &name("q")), Ok(2));
        assert_eq!(
            choose_one(&file, &name("p")),
            Err(
                "schedule \"p\" is on 2 lines: index 0 (a;01:00;p), index 3 (a;13:00;p); \
                 give the INDEX of one"
                    .to_owned()
            )
        );
        let missing = choose(&file, &name("junk")).unwrap_err();
        assert!(
            missing.starts_with("no schedule is named \"junk\""),
            "{missing}"
        );
        assert_eq!(
            choose(&file, &Which::Index(4)),
            Err("no schedule at index 4: indexes go from 0 to 3".to_owned())
        );
    }
}
