//! Running a processor natively, as the host would, for unit tests.

use prost::Message;

use crate::{Outcome, ProcessError, Processor, Signal, parse_config};

/// Builds a processor from config JSON exactly as the component's `init` does.
pub fn new<P: Processor>(config_json: &str) -> Result<P, String> {
    P::new(parse_config(config_json)?)
}

/// Runs one encoded OTLP request through the processor.
pub fn run<P: Processor>(processor: &mut P, signal: Signal, otlp: &[u8]) -> Result<Outcome, ProcessError> {
    processor.process_raw(signal, otlp.to_vec())
}

/// Runs a typed request; a `Replaced` result is also returned decoded as `M`.
pub fn run_typed<P: Processor, M: Message + Default>(
    processor: &mut P,
    signal: Signal,
    request: &M,
) -> Result<(Outcome, Option<M>), ProcessError> {
    let outcome = run(processor, signal, &request.encode_to_vec())?;
    let decoded = match &outcome {
        Outcome::Replaced(bytes) => Some(M::decode(&bytes[..]).map_err(|e| ProcessError::permanent(e.to_string()))?),
        _ => None,
    };
    Ok((outcome, decoded))
}
