//! Test guest: returns each batch untouched, as bytes or not at all. It never
//! decodes, so it measures the bare cost of crossing the sandbox boundary.

#![allow(missing_docs, reason = "a test guest, not an API")]

use wasmtel_sdk::{Outcome, ProcessError, Processor, Signal};

#[derive(serde::Deserialize, Default, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Answer `unchanged`: nothing is copied back.
    #[default]
    Unchanged,
    /// Answer `replaced` with the input bytes: one copy back.
    Replace,
    /// Answer `dropped`.
    Drop,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub mode: Mode,
}

pub struct Identity {
    mode: Mode,
}

impl Processor for Identity {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        Ok(Identity { mode: config.mode })
    }

    fn process_raw(&mut self, _signal: Signal, otlp: Vec<u8>) -> Result<Outcome, ProcessError> {
        Ok(match self.mode {
            Mode::Unchanged => Outcome::Unchanged,
            Mode::Replace => Outcome::Replaced(otlp),
            Mode::Drop => Outcome::Dropped,
        })
    }
}

wasmtel_sdk::export_processor!(Identity, failure_mode: open);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtel_sdk::testing;

    #[test]
    fn modes() {
        let mut replace: Identity = testing::new(r#"{"mode":"replace"}"#).unwrap();
        assert_eq!(testing::run(&mut replace, Signal::Logs, b"xyz").unwrap(), Outcome::Replaced(b"xyz".to_vec()));
        let mut default: Identity = testing::new("null").unwrap();
        assert_eq!(testing::run(&mut default, Signal::Logs, b"xyz").unwrap(), Outcome::Unchanged);
        assert!(testing::new::<Identity>(r#"{"mode":"sideways"}"#).is_err());
    }
}
