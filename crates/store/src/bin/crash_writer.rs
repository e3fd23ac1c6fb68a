//! Test helper for the crash tests: commits one block after another to the store given as the
//! first argument, printing each height once it is durable, until it is killed.
#![allow(clippy::print_stdout, reason = "the parent test reads the committed heights")]

use std::io::Write;

use alloy_primitives::{Address, B256};
use xiebao_node::{Header, execute_block, propose_block};
use xiebao_protocol::testkit::{CHAIN_ID, World};
use xiebao_protocol::{FinishedTasks, VerifiedTx};
use xiebao_store::Store;
use xiebao_types::tx::{PoolPolicy, Transfer};
use xiebao_types::{Nrlc, Transaction};

fn main() {
    let path = std::env::args().nth(1).expect("usage: xiebao-store-crash-writer <store file>");
    let store = Store::open(path.as_ref()).expect("open store");
    let world = World::new(1, Nrlc::rlc(1_000_000), PoolPolicy::default(), Nrlc::rlc(1));
    let (mut state, mut head) = match store.load(FinishedTasks::Evict).expect("load") {
        Some(loaded) => loaded,
        None => {
            let mut state = world.state.clone();
            let genesis = Header {
                chain_id: CHAIN_ID,
                height: 0,
                parent: B256::ZERO,
                timestamp: world.block.timestamp,
                proposer: Address::ZERO,
                tx_root: B256::ZERO,
                state_root: state.digest(),
            };
            store.init(&mut state, &genesis).expect("init");
            (state, genesis)
        }
    };
    let worker = &world.actors.workers[0];
    let to = world.actors.app_owner.address();
    let mut stdout = std::io::stdout();
    loop {
        let nonce = state.account(&worker.address()).nonce;
        let calls = vec![Transfer { to, amount: Nrlc(1) }.into()];
        let signed = Transaction { chain_id: CHAIN_ID, nonce, calls }.sign(worker);
        let tx = VerifiedTx::new(signed, &state.domain()).expect("valid signature");
        let proposal =
            propose_block(&mut state, &head, head.timestamp + 1, Address::ZERO, vec![tx]);
        assert!(proposal.rejected.is_empty(), "{:?}", proposal.rejected);
        execute_block(&mut state, &head, &proposal.block).expect("execute");
        store.commit(&proposal.block, state.take_changes()).expect("commit");
        head = proposal.block.header;
        writeln!(stdout, "{}", head.height).expect("stdout");
        stdout.flush().expect("stdout");
    }
}
