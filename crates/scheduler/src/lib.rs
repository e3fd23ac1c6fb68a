//! Schedule a workerpool's tasks.
//!
//! One scheduler runs per workerpool and holds the pool owner's key. It follows the chain
//! (WebSocket events, never polling) for the deals of its pool, initializes their tasks in
//! batches, hands replicates to idle capable workers — as many per task as PoCo's consensus
//! prediction needs given the workers' scores — signs their contribution authorizations, asks
//! the winners to reveal and one of them to upload, and finalizes in batches — with that
//! designated uploader's link only, once it has fetched the result and checked it is the
//! agreed one ([`service::check_result`]). It bounds each worker's slots by its stake and
//! how long a replicate may go without progress, and closes a worker's session when its
//! membership ends. It notices lost workers (dropped connections, missed pings) and slow ones
//! (far past the bag's median) and hands their tasks to others, reopens tasks whose winners
//! never revealed, and can say for every task why it is not finished yet
//! ([`api::TaskState`]).
//!
//! [`board`] is the bookkeeping and every decision, without I/O; [`service`] runs it against a
//! node and serves [`api`] to workers and requesters.

/// The pool API workers and requesters speak (its types and methods live in `xiebao-rpc`, where
/// clients reach them without depending on the scheduler).
pub use xiebao_rpc::pool as api;
pub mod board;
pub mod service;
