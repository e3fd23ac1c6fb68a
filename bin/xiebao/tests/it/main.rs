//! End-to-end tests through the real `xiebao` binary.

mod cli;
mod order_cli;
mod result_cli;
mod wallet_cli;
