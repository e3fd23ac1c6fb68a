//! Integration tests of block proposal, execution and the mempool.

mod blocks;
mod mempool;
