//! Integration tests of the protocol state machine through its public API.
#![allow(
    clippy::result_large_err,
    reason = "rejections carry the values they name; they are the cold path"
)]

mod bridge;
mod lifecycle;
mod matching;
mod properties;
mod tee;
mod validators;

use xiebao_protocol::testkit::World;
use xiebao_protocol::{Event, ProtocolError};

/// Asserts the between-transaction invariants.
pub(crate) fn check_invariants(world: &World) {
    if let Err(broken) = world.state.check_invariants() {
        panic!("invariant broken: {broken}");
    }
}

/// Asserts `result` failed, left the state unchanged, and returns the innermost error.
pub(crate) fn rejected(
    world: &mut World,
    f: impl FnOnce(&mut World) -> Result<Vec<Event>, ProtocolError>,
) -> ProtocolError {
    let before = world.state.digest();
    let error = f(world).expect_err("expected a rejection");
    assert_eq!(world.state.digest(), before, "a rejected transaction changed the state: {error}");
    check_invariants(world);
    error.root().clone()
}
