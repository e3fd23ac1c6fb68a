//! The fuzz targets' corpora replayed on stable Rust: every file under `fuzz/corpus/<target>/`,
//! the seeds built here, and deterministic mutations of each (truncations, byte flips,
//! insertions) go through the same function `cargo fuzz` drives, whose assertions must hold.
//!
//! `XIEBAO_FUZZ_WRITE_SEEDS=1` writes the seeds built here into the corpora (how the committed
//! seeds were made).

#[path = "../../../../fuzz/src/bodies.rs"]
#[allow(unreachable_pub, reason = "the bodies are the fuzz crate's public API")]
mod bodies;

use std::path::{Path, PathBuf};

use alloy_primitives::{Address, B256, Bytes, U256};
use xiebao_types::SecretKey;
use xiebao_types::order::{AnyOrder, Domain, RequestOrder};
use xiebao_types::tx::{Contribute, Transaction, Transfer};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target)
}

fn signed_tx() -> Vec<u8> {
    let key = SecretKey::from_label("fuzz seed");
    let calls = vec![
        Transfer { to: Address::repeat_byte(2), amount: xiebao_types::Nrlc(5) }.into(),
        Contribute {
            task_id: B256::repeat_byte(3),
            result_hash: B256::repeat_byte(4),
            result_seal: B256::repeat_byte(5),
            enclave_challenge: Address::ZERO,
            enclave_sign: Bytes::new(),
            authorization_sign: Bytes::from(vec![7u8; 65]),
        }
        .into(),
    ];
    Transaction { chain_id: 65_535, nonce: 3, calls }.sign(&key).encode_to_vec()
}

fn request_json() -> Vec<u8> {
    let key = SecretKey::from_label("fuzz seed");
    let mut order = AnyOrder::Request(RequestOrder {
        app: Address::repeat_byte(0xaa),
        appmaxprice: U256::from(10),
        dataset: Address::ZERO,
        datasetmaxprice: U256::ZERO,
        workerpool: Address::ZERO,
        workerpoolmaxprice: U256::from(20),
        requester: key.address(),
        volume: U256::from(4),
        tag: xiebao_types::Tag::NONE,
        category: U256::ZERO,
        trust: U256::from(1),
        beneficiary: key.address(),
        callback: Address::ZERO,
        params: r#"{"iexec_args":"64 48","iexec_input_files":["http://h/a.txt"]}"#.into(),
        salt: B256::repeat_byte(9),
        sign: Bytes::new(),
    });
    order.sign_with(&Domain::new(65_535, Address::repeat_byte(1)), &key);
    order.to_json().to_string().into_bytes()
}

fn tar_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut header = tar::Header::new_gnu();
        // The name is written raw: tar's own setter refuses `..`, which a hostile archive has.
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, *content).expect("append");
    }
    builder.into_inner().expect("tar")
}

/// Seeds for each target, built from the real types.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "transaction" => vec![signed_tx()],
        "relay_batch" => {
            vec![alloy_rlp::encode(vec![Bytes::from(signed_tx()), Bytes::from(signed_tx())])]
        }
        "block" => {
            use commonware_codec::Encode as _;
            let tx = xiebao_types::SignedTransaction::decode(&signed_tx()).expect("seed decodes");
            let header = xiebao_node::Header {
                chain_id: 65_535,
                height: 1,
                parent: B256::repeat_byte(1),
                timestamp: 1_700_000_000,
                proposer: Address::repeat_byte(2),
                tx_root: xiebao_node::block::tx_root([tx.hash()]),
                state_root: B256::repeat_byte(3),
            };
            let block = xiebao_node::Block { header, txs: vec![tx] };
            vec![xiebao_chain::block::ChainBlock::new(block).encode().to_vec()]
        }
        "order_json" => vec![request_json()],
        "rpc_params" => vec![
            br#"{"jsonrpc":"2.0","id":1,"method":"xiebao_chainStatus","params":[]}"#.to_vec(),
            br#"{"address":"0x0101010101010101010101010101010101010101","kinds":["TaskFinalize"]}"#
                .to_vec(),
            br#"{"kind":"request","min_volume":1,"limit":10}"#.to_vec(),
        ],
        "scheduler_frame" => vec![
            br#"{"task":"0x0303030303030303030303030303030303030303030303030303030303030303","progress":{"failed":{"stage":"running","reason":"exit 1"}}}"#.to_vec(),
        ],
        "task_params" => vec![
            b" 64 48  2 2 ".to_vec(),
            br#"{"iexec_args":"--top 5","iexec_input_files":["http://h/v1/results/bafk1","http://h/a/../..?x=1"]}"#.to_vec(),
        ],
        "result_archive" => vec![
            tar_with(&[("result.txt", b"42\n"), ("dir/nested.txt", b"x")]),
            tar_with(&[("../escape.txt", b"evil")]),
        ],
        other => panic!("no seeds for target {other}"),
    }
}

/// Deterministic mutations: truncations, single-byte flips and insertions (bounded).
fn mutations(seed: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let step = (seed.len() / 48).max(1);
    for cut in (0..seed.len()).step_by(step) {
        out.push(seed[..cut].to_vec());
    }
    for (i, position) in (0..seed.len()).step_by(step).enumerate() {
        let mut flipped = seed.to_vec();
        flipped[position] ^= [0x01, 0x80, 0xff, 0x20][i % 4];
        out.push(flipped);
        let mut inserted = seed.to_vec();
        inserted.insert(position, [0x00, 0xc0, b'"', b'{'][i % 4]);
        out.push(inserted);
    }
    out
}

#[test]
fn fuzz_corpora_and_their_mutations_replay_without_a_failure() {
    let write = std::env::var_os("XIEBAO_FUZZ_WRITE_SEEDS").is_some();
    for (target, body) in bodies::TARGETS {
        let dir = corpus(target);
        let built = seeds(target);
        if write {
            std::fs::create_dir_all(&dir).expect("corpus directory");
            for (i, seed) in built.iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i}")), seed).expect("write seed");
            }
        }
        let mut inputs = built;
        let files = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {} of target {target}: {e}", dir.display()));
        for file in files {
            inputs.push(std::fs::read(file.expect("entry").path()).expect("corpus file"));
        }
        assert!(inputs.len() > seeds(target).len(), "target {target} has no corpus files");
        for input in &inputs {
            body(input);
            for mutated in mutations(input) {
                body(&mutated);
            }
        }
    }
}
