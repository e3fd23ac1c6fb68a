//! Fuzz the decoders that take bytes from the network (see `bodies`).

#[path = "bodies.rs"]
mod bodies;
pub use bodies::*;
