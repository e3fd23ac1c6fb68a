//! Load Ethereum keystore wallets and sign Xiebao orders and transactions for clients.

pub mod client;
pub mod digest;
pub mod params;
pub mod wallet;
