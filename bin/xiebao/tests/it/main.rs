//! End-to-end tests through the real `xiebao` binary.

mod cli;
