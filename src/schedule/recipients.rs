//! The public keys an encrypted schedule's archives are sealed to (`encrypt=KEY` fields),
//! checked and written in one spelling, with no I/O.
//!
//! A key is an age X25519 recipient (`age1...`) or an SSH public key (`ssh-ed25519 AAAA...`,
//! `ssh-rsa AAAA...`, as in `authorized_keys`). An SSH key's comment is dropped: it is not
//! part of the key, and it may hold what a schedule field cannot (a `;`).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// One recipient's public key, as the schedule line stores it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Recipient(String);

impl Recipient {
    /// The key as written on the line: `age1...` or `ssh-ed25519 AAAA...`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it is an SSH key rather than an age one.
    pub fn is_ssh(&self) -> bool {
        self.0.starts_with("ssh-")
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Recipient {
    type Err = BadRecipient;

    /// Parses a key as `age -r` takes it; an SSH key may have its comment.
    fn from_str(text: &str) -> Result<Self, BadRecipient> {
        let bad = |why: String| BadRecipient {
            key: text.to_owned(),
            why,
        };
        let text = text.trim();
        // A secret pasted by mistake is not repeated in the error, nor so in the log.
        if text.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") || text.contains("PRIVATE KEY")
        {
            return Err(BadRecipient {
                key: "(a secret key, not shown)".to_owned(),
                why: "this is a secret key: give its public key (`age-keygen -y FILE`, or the \
                      `.pub` file of an SSH key), and keep the secret off this machine"
                    .to_owned(),
            });
        }
        if text.starts_with("age1") {
            let key = age::x25519::Recipient::from_str(text).map_err(|e| bad(e.to_string()))?;
            return Ok(Recipient(key.to_string()));
        }
        if text.starts_with("ssh-") {
            use age::ssh::ParseRecipientKeyError as E;
            let key = age::ssh::Recipient::from_str(text).map_err(|e| {
                bad(match e {
                    E::Unsupported(kind) => {
                        format!("SSH keys of type {kind} are not supported (ssh-ed25519 and ssh-rsa are)")
                    }
                    E::RsaModulusTooSmall => "the RSA key is shorter than 2048 bits".to_owned(),
                    E::RsaModulusTooLarge => "the RSA key is too long".to_owned(),
                    E::Invalid(why) => why.to_owned(),
                    E::Ignore => "not a supported SSH public key".to_owned(),
                })
            })?;
            return Ok(Recipient(key.to_string()));
        }
        Err(bad(
            "a recipient is an age public key (age1...) or an SSH public key \
             (ssh-ed25519 ... or ssh-rsa ...)"
                .to_owned(),
        ))
    }
}

/// A key that is no recipient, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecipient {
    /// The key as given.
    pub key: String,
    /// Why it was refused.
    pub why: String,
}

impl fmt::Display for BadRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "recipient {:?} is not a public key to encrypt to: {}",
            super::shown(&self.key),
            self.why
        )
    }
}

impl std::error::Error for BadRecipient {}

/// The keys of a recipients file, as `age -R` reads one: a key a line, blank lines and
/// lines starting with `#` skipped. Every key must be valid, and there must be one.
pub fn parse_recipients_file(text: &str) -> Result<Vec<Recipient>, String> {
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        keys.push(line.parse().map_err(|e| format!("line {}: {e}", n + 1))?);
    }
    if keys.is_empty() {
        return Err("it holds no recipient".to_owned());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGE: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN";

    #[test]
    fn keys_are_kept_in_one_spelling() {
        assert_eq!(AGE.parse::<Recipient>().unwrap().as_str(), AGE);
        let with_comment = format!("{ED25519} alice@laptop; more");
        let key: Recipient = with_comment.parse().unwrap();
        assert_eq!(key.as_str(), ED25519);
        assert!(key.is_ssh());
    }

    #[test]
    fn what_is_no_key_is_refused_with_why() {
        for bad in [
            "",
            "age1",
            "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8q",
            "ssh-ed25519 AAAA",
            "ssh-dss AAAAB3NzaC1kc3MAAACBAPqx",
            "AGE-SECRET-KEY-1XYZ",
        ] {
            let err = bad.parse::<Recipient>().unwrap_err();
            assert!(err.to_string().starts_with("recipient "), "{err}");
        }
        let secret = "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQS";
        let err = secret.parse::<Recipient>().unwrap_err().to_string();
        assert!(
            !err.contains("QYQSZ") && err.contains("secret key"),
            "{err}"
        );
    }

    #[test]
    fn a_recipients_file_is_read_as_age_reads_it() {
        let text = format!("# mine\n{AGE}\n\n  {ED25519} bob\n");
        let keys = parse_recipients_file(&text).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(parse_recipients_file("# none\n").is_err());
        let err = parse_recipients_file(&format!("{AGE}\nnope\n")).unwrap_err();
        assert!(err.starts_with("line 2: "), "{err}");
    }
}
