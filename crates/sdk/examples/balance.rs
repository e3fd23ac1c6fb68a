//! Read an account's balances and nonce from a node: the smallest use of the typed client.
//!
//! Against a local devnet (`xiebao devnet --keep` in another terminal, from the directory
//! that then holds `xiebao-devnet/`):
//!
//! ```text
//! RPC=$(jq -r '.rpc[0]' xiebao-devnet/devnet.json)
//! ADDRESS=$(jq -r '.workers[0].address' xiebao-devnet/devnet.json)
//! cargo run -p xiebao-sdk --example balance -- "$ADDRESS" "$RPC"
//! ```
//!
//! The URL may also come from `XIEBAO_RPC`; without either it is `http://127.0.0.1:8545`.
//! It prints, e.g.:
//!
//! ```text
//! chain 65535 at http://127.0.0.1:12345
//! account 0x5e23…4a536a
//!   free    990 RLC
//!   frozen  10 RLC
//!   nonce   1
//! ```

#![allow(clippy::print_stdout, reason = "an example prints what it reads")]

use alloy_primitives::Address;
use xiebao_rpc::XiebaoApiClient as _;
use xiebao_sdk::client::Node;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let address: Address = args
        .next()
        .ok_or("usage: balance ADDRESS [RPC_URL]")?
        .parse()
        .map_err(|e| format!("ADDRESS: {e}"))?;
    let url = args
        .next()
        .or_else(|| std::env::var("XIEBAO_RPC").ok())
        .unwrap_or_else(|| "http://127.0.0.1:8545".to_owned());

    // `connect` asks the node for its chain id and order domain once; `node.rpc` is the
    // typed JSON-RPC client (every method of `XiebaoApiClient`).
    let node = Node::connect(&url).await?;
    let account = node.rpc.account(address).await?;
    println!("chain {} at {}", node.chain_id, node.url);
    println!("account {address}");
    println!("  free    {} RLC", account.free.to_rlc_string());
    println!("  frozen  {} RLC", account.frozen.to_rlc_string());
    println!("  nonce   {}", account.nonce);
    Ok(())
}
