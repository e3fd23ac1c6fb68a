//! Propose on one node, execute on another: same state; bad blocks change nothing.

use alloy_primitives::{Address, B256};
use xiebao_node::{BlockError, Header, execute_block, propose_block};
use xiebao_protocol::testkit::{DealSpec, World};
use xiebao_types::Nrlc;
use xiebao_types::tx::{PoolPolicy, Transfer};

fn world() -> World {
    World::new(2, Nrlc::rlc(100), PoolPolicy::default(), Nrlc::rlc(10))
}

fn genesis(w: &World) -> Header {
    Header {
        chain_id: w.state.globals().chain_id,
        height: 0,
        parent: B256::ZERO,
        timestamp: w.block.timestamp,
        proposer: Address::ZERO,
        tx_root: B256::ZERO,
        state_root: w.state.digest(),
    }
}

#[test]
fn a_proposed_block_executes_to_the_same_state_on_every_node() {
    let mut proposer = world();
    let mut follower = proposer.clone();
    let parent = genesis(&proposer);
    let orders = proposer.orders(&DealSpec { volume: 2, ..DealSpec::default() });
    let requester = proposer.actors.requester.clone();
    let worker = proposer.actors.workers[0].clone();
    let to = proposer.actors.app_owner.address();
    let candidates = vec![
        proposer.sign(&requester, vec![orders.into()]),
        // Too much: rejected at proposal, reported, left out.
        proposer.sign(&worker, vec![Transfer { to, amount: Nrlc::rlc(1_000) }.into()]),
    ];
    let before = proposer.state.digest();
    let proposal = propose_block(
        &mut proposer.state,
        &parent,
        parent.timestamp + 1,
        Address::ZERO,
        candidates,
    );
    assert_eq!(proposer.state.digest(), before, "proposing changes nothing");
    assert_eq!(proposal.block.txs.len(), 1);
    assert_eq!(proposal.rejected.len(), 1);
    let block = proposal.block;
    let receipts = execute_block(&mut follower.state, &parent, &block).unwrap();
    assert_eq!(receipts.len(), 1);
    execute_block(&mut proposer.state, &parent, &block).unwrap();
    assert_eq!(proposer.state.digest(), follower.state.digest());
    assert_eq!(follower.state.digest(), block.header.state_root);
    assert_eq!(follower.state.deals().len(), 1);
}

#[test]
fn invalid_blocks_are_rejected_and_change_nothing() {
    let mut w = world();
    let parent = genesis(&w);
    let to = w.actors.app_owner.address();
    let worker = w.actors.workers[0].clone();
    let tx = w.sign(&worker, vec![Transfer { to, amount: Nrlc::rlc(1) }.into()]);
    let good =
        propose_block(&mut w.state, &parent, parent.timestamp + 1, Address::ZERO, vec![tx]).block;
    let before = w.state.digest();
    let check = |w: &mut World, block: &xiebao_node::Block| {
        let error = execute_block(&mut w.state, &parent, block).unwrap_err();
        assert_eq!(w.state.digest(), before, "{error}");
        error
    };
    let mut bad = good.clone();
    bad.header.state_root = B256::repeat_byte(1);
    assert!(matches!(check(&mut w, &bad), BlockError::BadStateRoot { .. }));
    let mut bad = good.clone();
    bad.txs.clear();
    assert!(matches!(check(&mut w, &bad), BlockError::BadTxRoot { .. }));
    let mut bad = good.clone();
    bad.header.height = 5;
    assert!(matches!(check(&mut w, &bad), BlockError::BadHeight { parent: 0, got: 5 }));
    let mut bad = good.clone();
    bad.header.parent = B256::repeat_byte(2);
    assert!(matches!(check(&mut w, &bad), BlockError::BadParent { .. }));
    let mut bad = good.clone();
    bad.header.timestamp = parent.timestamp - 1;
    assert!(matches!(check(&mut w, &bad), BlockError::TimeWentBackwards { .. }));
    // A block carrying a failing transaction (a byzantine proposer's) is invalid.
    let overspend = w.sign(&worker, vec![Transfer { to, amount: Nrlc::rlc(1_000) }.into()]);
    let mut bad = good.clone();
    bad.txs = vec![overspend.signed()];
    bad.header.tx_root = xiebao_node::block::tx_root([overspend.hash]);
    assert!(matches!(check(&mut w, &bad), BlockError::TxFailed { index: 0, .. }));
    // The good block still applies.
    execute_block(&mut w.state, &parent, &good).unwrap();
    assert_eq!(w.state.digest(), good.header.state_root);
}

#[test]
fn end_of_block_timers_are_part_of_the_block() {
    let mut a = world();
    let deal = a.deal(&DealSpec::default()).unwrap();
    a.advance(1);
    let mut b = a.clone();
    let parent = genesis(&a);
    // An empty block past the final deadline expires the deal on every node.
    let block =
        propose_block(&mut a.state, &parent, parent.timestamp + 3_001, Address::ZERO, vec![]).block;
    execute_block(&mut a.state, &parent, &block).unwrap();
    execute_block(&mut b.state, &parent, &block).unwrap();
    assert!(a.state.deals()[&deal].expired);
    assert_eq!(a.state.digest(), b.state.digest());
}

#[test]
fn large_blocks_verify_in_parallel_and_report_the_first_bad_signature() {
    let mut w = world();
    let parent = genesis(&w);
    let worker = w.actors.workers[0].clone();
    let to = w.actors.app_owner.address();
    let first = w.state.account(&worker.address()).nonce;
    let candidates: Vec<_> = (first..first + 100)
        .map(|nonce| {
            let signed = xiebao_types::Transaction {
                chain_id: xiebao_protocol::testkit::CHAIN_ID,
                nonce,
                calls: vec![Transfer { to, amount: Nrlc(1) }.into()],
            }
            .sign(&worker);
            xiebao_protocol::VerifiedTx::new(signed, &w.domain).unwrap()
        })
        .collect();
    let mut block =
        propose_block(&mut w.state, &parent, parent.timestamp, Address::ZERO, candidates).block;
    assert_eq!(block.txs.len(), 100);
    let verified = xiebao_node::verify_all(&block.txs, &w.domain).unwrap();
    assert!(
        verified.iter().enumerate().all(|(i, tx)| tx.tx.nonce == first + i as u64),
        "order kept"
    );
    let mut follower = w.clone();
    execute_block(&mut follower.state, &parent, &block).unwrap();
    assert_eq!(follower.free(to), Nrlc(Nrlc::rlc(100).0 + 100));
    // Corrupt the signature of tx 70 (v = 29 is never valid).
    block.txs[70].signature = {
        let mut sig = block.txs[70].signature.to_vec();
        sig[64] = 29;
        sig.into()
    };
    assert_eq!(
        xiebao_node::verify_all(&block.txs, &w.domain).unwrap_err(),
        BlockError::BadSignature { index: 70 }
    );
}

#[test]
fn recovered_signatures_from_the_mempool_give_the_same_execution() {
    use xiebao_node::{KnownTxs, Mempool, MempoolLimits, execute_block_known};
    let mut proposer = world();
    let mut cold = proposer.clone();
    let mut warm = proposer.clone();
    let parent = genesis(&proposer);
    let requester = proposer.actors.requester.clone();
    let orders = proposer.orders(&DealSpec { volume: 2, ..DealSpec::default() });
    let tx = proposer.sign(&requester, vec![orders.into()]);
    let mut mempool = Mempool::new(MempoolLimits::default());
    mempool.insert(tx.clone(), 100, xiebao_node::SenderState::funded(0), 0).unwrap();
    let block =
        propose_block(&mut proposer.state, &parent, parent.timestamp + 1, Address::ZERO, vec![tx])
            .block;
    let hashes: Vec<B256> = block.txs.iter().map(|t| t.hash()).collect();
    let known = mempool.known(&hashes);
    assert_eq!(known.len(), 1, "the pending transaction is found by id");
    let from_cache = execute_block_known(&mut warm.state, &parent, &block, &known).unwrap();
    let recovered =
        execute_block_known(&mut cold.state, &parent, &block, &KnownTxs::new()).unwrap();
    assert_eq!(from_cache, recovered);
    assert_eq!(warm.state.digest(), cold.state.digest());
    assert_eq!(warm.state.digest(), block.header.state_root);
}
