//! Load Ethereum keystore wallets and sign Xiebao orders and transactions for clients.
//!
//! - [`client`]: a [`Node`](client::Node) (the typed JSON-RPC client with the chain's id and
//!   order domain) and a [`Sender`](client::Sender) that signs, batches and follows calls;
//! - [`wallet`]: V3 keystores, hex keys and BIP-39 mnemonics;
//! - [`digest`]: the result digest workers agree on; [`params`]: a task's parameters;
//! - [`archive`]: unpacking a result archive from anyone, bounded and checked against its digest;
//! - [`download`]: fetching a task's result, bounded, checked against its content id and digest;
//! - [`requester`]: the `xiebao run` flow (choose orders, match, follow the bag, download);
//! - [`config`]: named chains (the config file, the built-in `devnet`) and which endpoint a
//!   flag, the environment, a chain or a default gives.
//!
//! Read an account (the whole of `examples/balance.rs` is this and its arguments):
//!
//! ```no_run
//! # async fn balance() -> Result<(), Box<dyn std::error::Error>> {
//! use xiebao_rpc::XiebaoApiClient as _;
//! let node = xiebao_sdk::client::Node::connect("http://127.0.0.1:8545").await?;
//! let address = "0x0101010101010101010101010101010101010101".parse()?;
//! let account = node.rpc.account(address).await?;
//! println!("free {} RLC, frozen {} RLC", account.free.to_rlc_string(), account.frozen.to_rlc_string());
//! # Ok(()) }
//! ```
//!
//! Runnable examples, each documented with how to run it against `xiebao devnet --keep`:
//!
//! - `examples/balance.rs`: an account's balances and nonce
//!   (`cargo run -p xiebao-sdk --example balance -- ADDRESS RPC_URL`);
//! - `examples/watch_deal.rs`: a deal's tasks followed through the event subscription as the
//!   chain settles them (`cargo run -p xiebao-sdk --example watch_deal -- RPC_URL [DEAL]`);
//! - `examples/run_app.rs`: an app run by name and its results downloaded, the requester's
//!   flow of `xiebao run` (`cargo run -p xiebao-sdk --example run_app -- APP ARGS VOLUME KEY
//!   RPC_URL OUT`).

pub mod archive;
pub mod client;
pub mod config;
pub mod digest;
pub mod download;
pub mod params;
pub mod requester;
pub mod wallet;
