//! Setting an option back to its default, for `edit --clear OPTION`.

use super::choosing;
use super::options::Options;
use crate::naming::Compression;

/// The options `edit --clear` takes, named as on the line (`compress` for the
/// compression, as `create`'s flag says it).
pub const CLEARABLE: [&str; 18] = [
    "days",
    "compress",
    "keep",
    "keep-hourly",
    "keep-daily",
    "keep-weekly",
    "keep-monthly",
    "keep-yearly",
    "keep-within",
    "exclude",
    "exclude-caches",
    "gitignore",
    "exclude-from",
    "one-file-system",
    "exclude-larger-than",
    "full-every",
    "incremental",
    "encrypt",
];

impl Options {
    /// Sets the option `key` (one of [`CLEARABLE`]) back to its default: `exclude` drops
    /// every pattern, `incremental` the chain (and its `full-every`), `full-every` only
    /// the interval. Fails on a key that is no option.
    pub fn clear(&mut self, key: &str) -> Result<(), String> {
        let defaults = Options::default();
        match key {
            "days" => self.days = defaults.days,
            "compress" => self.compression = Compression::None,
            "keep" => self.keep = defaults.keep,
            "keep-within" => self.periods.within = None,
            "exclude" => self.exclude.clear(),
            "exclude-caches" => self.exclude_caches = false,
            "gitignore" => self.gitignore = false,
            "incremental" => self.incremental = None,
            "encrypt" => self.encrypt.clear(),
            "full-every" => {
                if let Some(chain) = self.incremental.as_mut() {
                    chain.full_every_days = super::DEFAULT_FULL_EVERY;
                }
            }
            key if choosing::key(key).is_some() => self.choosing.clear(key),
            key => {
                let (_, rule) = super::options::period(key).ok_or_else(|| {
                    format!(
                        "--clear {key}: no such option (options: {})",
                        CLEARABLE.join(", ")
                    )
                })?;
                *self.periods.count_mut(rule).expect("a counted rule") = 0;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clearable_option_clears_to_the_plain_line() {
        let fields = "days=mon-fri;zstd;keep=3;keep-hourly=1;keep-daily=2;keep-weekly=3;\
                      keep-monthly=4;keep-yearly=5;keep-within=2w;exclude=a;exclude-caches;\
                      gitignore;exclude-from=/x;one-file-system;exclude-larger-than=1G;\
                      incremental;full-every=9;\
                      encrypt=age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
        let mut options = Options::parse(&fields.split(';').collect::<Vec<_>>()).unwrap();
        for key in CLEARABLE {
            assert!(!options.is_default(), "{key}");
            options.clear(key).unwrap();
        }
        assert!(options.is_default(), "{options}");
        assert!(options.clear("colour").is_err());
    }
}
