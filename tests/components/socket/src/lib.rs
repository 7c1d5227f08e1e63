//! Test guest that tries to open a TCP connection. Its component imports
//! `wasi:sockets`, which the host must refuse at load time.

#![allow(missing_docs, reason = "a test guest, not an API")]

use wasmtel_sdk::prelude::*;

pub struct Socket;

impl Processor for Socket {
    type Config = serde::de::IgnoredAny;

    fn new(_: serde::de::IgnoredAny) -> Result<Self, String> {
        Ok(Socket)
    }

    fn process_raw(&mut self, _signal: Signal, _otlp: Vec<u8>) -> Result<Outcome, ProcessError> {
        match std::net::TcpStream::connect("127.0.0.1:9") {
            Ok(_) => Err(ProcessError::permanent("connected: the sandbox leaked network access")),
            Err(error) => Err(ProcessError::permanent(format!("connect failed: {error}"))),
        }
    }
}

wasmtel_sdk::export_processor!(Socket);
