//! What each fuzz target does with its input: one function per decoder that takes bytes from
//! the network, each asserting what must hold for any input (no panic, round trips, nothing
//! left behind). `cargo fuzz` drives them (see `fuzz/README.md`); the test command replays
//! their corpora and mutations of them on stable Rust (`bin/xiebao/tests/it/fuzz_replay.rs`
//! includes this file).

use std::io::Cursor;

use alloy_primitives::{Address, B256, Bytes};

/// A target's body: takes any bytes, panics only on a broken property.
pub type Body = fn(&[u8]);

/// Every target, by name (its corpus is `fuzz/corpus/<name>/`).
pub const TARGETS: [(&str, Body); 8] = [
    ("transaction", transaction),
    ("relay_batch", relay_batch),
    ("block", block),
    ("order_json", order_json),
    ("rpc_params", rpc_params),
    ("scheduler_frame", scheduler_frame),
    ("task_params", task_params),
    ("result_archive", result_archive),
];

/// A transaction as `sendRawTransaction` and the relay receive it: what decodes re-encodes to
/// the same bytes (one canonical form, so one id), and recovering its sender never panics.
pub fn transaction(data: &[u8]) {
    if let Ok(tx) = xiebao_types::SignedTransaction::decode(data) {
        assert_eq!(tx.encode_to_vec(), data, "a decoded transaction re-encodes to its bytes");
        assert_eq!(tx.hash(), alloy_primitives::keccak256(data));
        let _ = tx.recover_sender();
    }
}

/// A batch of transactions relayed by a peer (RLP list of byte strings).
pub fn relay_batch(data: &[u8]) {
    if let Ok(batch) = <Vec<Bytes> as alloy_rlp::Decodable>::decode(&mut &data[..]) {
        for tx in batch {
            transaction(&tx);
        }
    }
}

/// A block as broadcast and backfilled between validators (commonware's codec over RLP).
pub fn block(data: &[u8]) {
    use commonware_codec::{Decode as _, Encode as _};
    let max = xiebao_chain::block::BLOCK_SIZE_MAX_BYTES;
    let bytes = bytes::Bytes::copy_from_slice(data);
    if let Ok(block) = xiebao_chain::block::ChainBlock::decode_cfg(bytes, &max) {
        let again = block.encode();
        assert!(again.len() <= data.len(), "a decoded block re-encodes to at most its bytes");
    }
}

/// An order's JSON, as `market_publish` and the order files take it: what parses prints back
/// to JSON that parses to the same order, and its hash never panics.
pub fn order_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(order) = xiebao_types::order::AnyOrder::from_json(text, None) {
        let printed = order.to_json().to_string();
        let again = xiebao_types::order::AnyOrder::from_json(&printed, None)
            .expect("a printed order parses");
        assert_eq!(again, order, "an order survives printing and parsing");
        let domain = xiebao_types::order::Domain::new(1, Address::repeat_byte(1));
        let _ = order.hash(&domain);
        let _ = order.recover_signer(&domain);
    }
}

/// JSON-RPC requests and the parameter types the node's and the market's methods take.
pub fn rpc_params(data: &[u8]) {
    let _ = serde_json::from_slice::<xiebao_rpc::jsonrpsee::types::Request<'_>>(data);
    let _ = serde_json::from_slice::<xiebao_rpc::EventFilter>(data);
    let _ = serde_json::from_slice::<xiebao_rpc::OrderQuery>(data);
    let _ = serde_json::from_slice::<(B256, Bytes)>(data);
    let _ = serde_json::from_slice::<(serde_json::Value, Option<String>)>(data);
}

/// What a worker sends its scheduler (hello, reports) and what a scheduler pushes (work).
pub fn scheduler_frame(data: &[u8]) {
    use xiebao_scheduler::api::{Hello, Report, Work};
    if let Ok(report) = serde_json::from_slice::<Report>(data) {
        let printed = serde_json::to_vec(&report).expect("a report prints");
        assert_eq!(serde_json::from_slice::<Report>(&printed).ok(), Some(report));
    }
    let _ = serde_json::from_slice::<Hello>(data);
    let _ = serde_json::from_slice::<Work>(data);
}

/// A request's `params` (plain arguments or iExec's JSON), read by every worker.
pub fn task_params(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(params) = xiebao_sdk::params::TaskParams::parse(text) {
        for (index, url) in params.input_files.iter().enumerate() {
            let name = xiebao_sdk::params::input_name(url, index);
            let safe = !name.is_empty() && name != "." && name != ".." && !name.contains('/');
            assert!(safe, "input {index} is saved as {name:?}, outside /in");
        }
    }
}

/// A result archive as a requester downloads it: unpacking against a digest it cannot match
/// always fails, and leaves nothing behind (no output, no temporary directory, nothing
/// outside the target).
pub fn result_archive(data: &[u8]) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = dir.path().join("out");
    let limits = xiebao_sdk::archive::UnpackLimits { bytes_max: 1 << 20, entries_max: 256 };
    let unpacked = xiebao_sdk::archive::unpack_verified(
        Cursor::new(data),
        &out,
        &limits,
        B256::repeat_byte(0xee),
    );
    assert!(unpacked.is_err(), "no archive has the digest 0xee…");
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("readable").collect();
    assert!(left.is_empty(), "a failed unpack left {left:?}");
}
