//! What a design set its runtime up with, reported once at start (schema `server-settings/1`,
//! docs/server-contract.md), and which set-up to use: its runtime's authors' (the default) or the
//! runtime's library defaults (`BENCH_RUNTIME_SETTINGS=defaults`, for an ablation).

use std::env;
use std::fmt::{self, Display, Write as _};
use std::io::{self, Write};

/// The environment variable that chooses the set-up: `authors` (or unset) or `defaults`.
pub const ENV: &str = "BENCH_RUNTIME_SETTINGS";

/// Which set-up a design builds its runtime with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// As the runtime's authors set one up for a network server (docs/fairness.md cites where).
    Authors,
    /// Every builder option left at the runtime's library default.
    Defaults,
}

impl Profile {
    /// The profile `BENCH_RUNTIME_SETTINGS` asks for; exits 2 with one line on any other value.
    pub fn from_env() -> Profile {
        match Profile::parse(env::var(ENV).ok().as_deref()) {
            Ok(profile) => profile,
            Err(msg) => {
                eprintln!("error: {msg}");
                std::process::exit(2);
            }
        }
    }

    fn parse(value: Option<&str>) -> Result<Profile, String> {
        match value {
            None | Some("") | Some("authors") => Ok(Profile::Authors),
            Some("defaults") => Ok(Profile::Defaults),
            Some(other) => Err(format!(
                "{ENV}={other:?}: expected `authors` (the default) or `defaults`"
            )),
        }
    }

    /// True for the authors' set-up.
    pub fn authors(self) -> bool {
        self == Profile::Authors
    }

    fn name(self) -> &'static str {
        match self {
            Profile::Authors => "authors",
            Profile::Defaults => "defaults",
        }
    }
}

/// One setting's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(u64),
    Bool(bool),
    Text(String),
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(v.into())
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::Int(v as u64)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_string())
    }
}

impl Display for Value {
    /// As JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Text(s) => {
                f.write_char('"')?;
                for c in s.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                        c => f.write_char(c)?,
                    }
                }
                f.write_char('"')
            }
        }
    }
}

/// The settings of one design, in the order they are added.
#[derive(Clone, Debug)]
pub struct Settings {
    design: &'static str,
    profile: Profile,
    values: Vec<(&'static str, Value)>,
}

impl Settings {
    pub fn new(design: &'static str, profile: Profile) -> Settings {
        Settings {
            design,
            profile,
            values: Vec::new(),
        }
    }

    /// Adds `key` (a fixed identifier: no JSON escaping) with `value`.
    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Settings {
        debug_assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        self.values.push((key, value.into()));
        self
    }

    /// The JSON line of the contract.
    pub fn line(&self) -> String {
        let values: Vec<String> = self
            .values
            .iter()
            .map(|(key, value)| format!(r#""{key}":{value}"#))
            .collect();
        format!(
            r#"{{"schema":"server-settings/1","design":"{}","profile":"{}","settings":{{{}}}}}"#,
            self.design,
            self.profile.name(),
            values.join(",")
        )
    }

    /// Prints the line on stdout (before READY).
    pub fn print(&self) {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{}", self.line()).and_then(|()| out.flush());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_from_its_variable() {
        assert_eq!(Profile::parse(None), Ok(Profile::Authors));
        assert_eq!(Profile::parse(Some("authors")), Ok(Profile::Authors));
        assert_eq!(Profile::parse(Some("defaults")), Ok(Profile::Defaults));
        assert!(Profile::parse(Some("fast")).unwrap_err().contains(ENV));
    }

    #[test]
    fn line_follows_the_contract() {
        let s = Settings::new("monoio-tpc", Profile::Authors)
            .with("ring_entries", 32768u32)
            .with("sqpoll", false)
            .with("driver", "io_uring \"x\"");
        assert_eq!(
            s.line(),
            concat!(
                r#"{"schema":"server-settings/1","design":"monoio-tpc","profile":"authors","#,
                r#""settings":{"ring_entries":32768,"sqpoll":false,"driver":"io_uring \"x\""}}"#
            )
        );
    }
}
