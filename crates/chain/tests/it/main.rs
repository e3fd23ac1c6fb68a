//! Whole 4-validator networks in one process on commonware's deterministic runtime with
//! simulated links: a Bag of transfers finalizes while one validator joins late (catching up
//! through marshal's backfill), the network is partitioned and heals, and every validator
//! ends with the same blocks and state roots; the same seed gives the same chain; and a
//! whole network restarted from disk continues where it stopped.
//!
//! See `TESTING.md` beside this file. Replay a failure with `XIEBAO_SEED=<seed>`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, B256};
use commonware_cryptography::{Signer as _, ed25519};
use commonware_p2p::simulated::{self, Link, Network, Oracle};
use commonware_runtime::{Clock, Runner as _, Supervisor as _, deterministic};
use commonware_utils::{NZUsize, probability};
use xiebao_chain::app::{Chain, Finalizer};
use xiebao_chain::block::ChainBlock;
use xiebao_chain::config::{GenesisFile, GenesisValidator, Timing};
use xiebao_chain::{Channels, QUOTA, max_message_size, open_chain, public_bytes, start_validator};
use xiebao_types::crypto::SecretKey;
use xiebao_types::tx::{AddValidator, RemoveValidator, Transaction, Transfer};
use xiebao_types::{Nrlc, SignedTransaction};

const VALIDATORS: usize = 4;
const CHAIN_ID: u64 = 77;
/// Short epochs, so every scenario crosses many epoch boundaries.
const EPOCH_LENGTH: u64 = 16;

type Key = ed25519::PublicKey;

fn seeds() -> Vec<u64> {
    match std::env::var("XIEBAO_SEED") {
        Ok(seed) => vec![seed.parse().expect("XIEBAO_SEED is a number")],
        Err(_) => vec![1, 2],
    }
}

fn sender() -> SecretKey {
    SecretKey::from_label("sim sender")
}

fn authority() -> SecretKey {
    SecretKey::from_label("sim authority")
}

fn genesis(signers: &[ed25519::PrivateKey]) -> GenesisFile {
    GenesisFile {
        chain_id: CHAIN_ID,
        verifying_contract: Address::repeat_byte(0x22),
        authority: authority().address(),
        timestamp: 0,
        balances: vec![(sender().address(), Nrlc::rlc(1_000))],
        validators: signers
            .iter()
            .enumerate()
            .map(|(i, s)| GenesisValidator {
                address: Address::repeat_byte(i as u8 + 1),
                consensus_key: public_bytes(&s.public_key()),
            })
            .collect(),
        categories: xiebao_protocol::Genesis::default_categories(),
        scores: Vec::new(),
        epoch_length: EPOCH_LENGTH,
    }
}

fn transfer(nonce: u64) -> SignedTransaction {
    let to = Address::left_padding_from(&(nonce % 5 + 1).to_be_bytes());
    Transaction {
        chain_id: CHAIN_ID,
        nonce,
        calls: vec![Transfer { to, amount: Nrlc(1_000 + nonce as u128) }.into()],
    }
    .sign(&sender())
}

fn timing(keep_blocks: Option<u64>) -> Timing {
    Timing { empty_block_wait_ms: 50, leader_timeout_ms: 1_000, keep_blocks, ..Timing::default() }
}

fn link() -> Link {
    Link {
        latency: Duration::from_millis(10),
        jitter: Duration::from_millis(3),
        success_rate: probability!(1.0),
    }
}

/// What one scenario left behind.
struct Outcome {
    /// Per validator: block hashes and state roots at heights 1..=height.
    chains: Vec<Vec<(B256, B256)>>,
    /// Per validator: the head it loaded from disk when it started.
    loaded: Vec<u64>,
    /// Per validator: what the transfers' recipients hold.
    received: Vec<u128>,
    /// Whether every validator pruned block 1.
    pruned: bool,
    /// Validator 0's view: the proposer of each compared block.
    proposers: Vec<Address>,
}

/// A scenario: which validator starts late, whether the network splits, how far to go.
#[derive(Clone, Copy)]
struct Scenario {
    seed: u64,
    late: Option<usize>,
    partition: bool,
    height: u64,
    transfers: u64,
    /// Blocks each validator keeps (`None`: all).
    keep_blocks: Option<u64>,
    /// A validator that proposes blocks with a wrong state root.
    byzantine: Option<usize>,
}

impl Scenario {
    /// Every validator from the start, honest, connected, keeping every block.
    fn plain(seed: u64, height: u64, transfers: u64) -> Self {
        Self {
            seed,
            late: None,
            partition: false,
            height,
            transfers,
            keep_blocks: None,
            byzantine: None,
        }
    }
}

async fn start_node(
    context: &deterministic::Context,
    oracle: &Oracle<Key, deterministic::Context>,
    dir: &Path,
    index: usize,
    signers: &[ed25519::PrivateKey],
    genesis: &GenesisFile,
    keep_blocks: Option<u64>,
) -> Arc<Chain> {
    let signer = signers[index].clone();
    let me = signer.public_key();
    let (chain, genesis_block): (Arc<Chain>, ChainBlock) = open_chain(
        &dir.join(format!("validator-{index}")),
        genesis,
        Address::repeat_byte(index as u8 + 1),
        public_bytes(&me),
        timing(keep_blocks),
    )
    .expect("chain opens");
    let control = oracle.control(me);
    let mut registered = Vec::new();
    for channel in 0..6 {
        registered.push(control.register(channel, QUOTA).await.expect("register"));
    }
    let mut registered = registered.into_iter();
    let mut next = || registered.next().expect("six channels");
    let channels = Channels {
        votes: next(),
        certificates: next(),
        resolver: next(),
        blocks: next(),
        backfill: next(),
        txs: next(),
    };
    start_validator(
        context.child("validator").with_attribute("index", index),
        chain.clone(),
        signer,
        genesis_block,
        timing(keep_blocks),
        channels,
        control,
        oracle.manager(),
        Finalizer::inline(chain.clone()),
        &format!("validator-{index}"),
    )
    .await;
    chain
}

/// A simulated network of `keys`, every pair linked.
async fn connected_network(
    context: &deterministic::Context,
    keys: &[Key],
) -> Oracle<Key, deterministic::Context> {
    let (network, oracle) = Network::new_with_peers(
        context.child("network"),
        simulated::Config {
            max_size: max_message_size(keys.len()),
            max_peers_per_set: std::num::NonZeroUsize::new(keys.len()).expect("some keys"),
            disconnect_on_block: true,
            tracked_peer_sets: NZUsize!(1),
        },
        keys.to_vec(),
    )
    .await;
    network.start();
    set_links(&oracle, keys, |_, _| true).await;
    oracle
}

async fn set_links(
    oracle: &Oracle<Key, deterministic::Context>,
    keys: &[Key],
    connected: impl Fn(usize, usize) -> bool,
) {
    for (i, a) in keys.iter().enumerate() {
        for (j, b) in keys.iter().enumerate() {
            if i == j {
                continue;
            }
            let _ = oracle.remove_link(a.clone(), b.clone()).await;
            if connected(i, j) {
                oracle.add_link(a.clone(), b.clone(), link()).await.expect("link");
            }
        }
    }
}

fn run(scenario: Scenario, dir: &Path) -> Outcome {
    resume(scenario, dir, None).0
}

/// Runs `scenario` (from a previous run's checkpoint: storage and clock as that run left
/// them, every task gone as after a crash of every process); returns its checkpoint too.
fn resume(
    scenario: Scenario,
    dir: &Path,
    from: Option<deterministic::Checkpoint>,
) -> (Outcome, deterministic::Checkpoint) {
    let executor = match from {
        Some(checkpoint) => deterministic::Runner::from(checkpoint),
        None => deterministic::Runner::new(
            deterministic::Config::new()
                .with_seed(scenario.seed)
                .with_timeout(Some(Duration::from_secs(3_600))),
        ),
    };
    let dir = dir.to_owned();
    executor.start_and_recover(async move |context| {
        let signers: Vec<ed25519::PrivateKey> =
            (0..VALIDATORS as u64).map(ed25519::PrivateKey::from_seed).collect();
        let keys: Vec<Key> = signers.iter().map(|s| s.public_key()).collect();
        let genesis = genesis(&signers);
        let oracle = connected_network(&context, &keys).await;

        let mut chains: Vec<Option<Arc<Chain>>> = vec![None; VALIDATORS];
        for (index, slot) in chains.iter_mut().enumerate() {
            if scenario.late != Some(index) {
                *slot = Some(
                    start_node(
                        &context,
                        &oracle,
                        &dir,
                        index,
                        &signers,
                        &genesis,
                        scenario.keep_blocks,
                    )
                    .await,
                );
            }
        }
        if let Some(index) = scenario.byzantine {
            let faults = xiebao_chain::app::Faults { corrupt_state_root: true };
            chains[index].as_ref().expect("the byzantine validator starts").set_faults(faults);
        }
        let first = chains[0].clone().expect("validator 0 starts");
        let loaded = chains.iter().flatten().map(|c| c.head().height).collect();
        let mut sent = first.committed_nonce(&sender().address());
        let mut partitioned_at = None;
        loop {
            context.sleep(Duration::from_millis(100)).await;
            let height = first.head().height;
            // A few transfers per step, through whichever validator is up.
            while sent < scenario.transfers && sent < height * 2 {
                let via = chains.iter().flatten().nth(sent as usize % 3).expect("a validator");
                via.submit(&transfer(sent).encode_to_vec()).expect("admitted");
                sent += 1;
            }
            if let Some(late) = scenario.late
                && chains[late].is_none()
                && height >= scenario.height / 3
            {
                chains[late] = Some(
                    start_node(
                        &context,
                        &oracle,
                        &dir,
                        late,
                        &signers,
                        &genesis,
                        scenario.keep_blocks,
                    )
                    .await,
                );
            }
            if scenario.partition && partitioned_at.is_none() && height >= scenario.height / 2 {
                // {0, 1} | {2, 3}: neither side has a quorum, so nothing finalizes until it heals.
                set_links(&oracle, &keys, |i, j| (i < 2) == (j < 2)).await;
                partitioned_at = Some(height);
                context.sleep(Duration::from_secs(5)).await;
                assert!(
                    first.head().height <= height + 1,
                    "seed {}: a minority finalized during the partition",
                    scenario.seed
                );
                set_links(&oracle, &keys, |_, _| true).await;
            }
            let all = chains.iter().flatten().count() == VALIDATORS;
            let lowest = chains.iter().flatten().map(|c| c.head().height).min().unwrap_or(0);
            if all && sent == scenario.transfers && lowest >= scenario.height {
                break;
            }
        }
        // Let the last transfers land everywhere.
        let target = first.head().height + 3;
        while chains.iter().flatten().any(|c| c.head().height < target) {
            context.sleep(Duration::from_millis(100)).await;
        }
        let top = chains.iter().flatten().map(|c| c.head().height).min().unwrap();
        // With pruning, compare the blocks every validator still keeps (heads differ by a few
        // blocks, so do the heights each one pruned below).
        let first_kept = scenario.keep_blocks.map_or(1, |keep| top.saturating_sub(keep) + 16);
        let pruned = chains.iter().flatten().all(|c| c.block(1).is_none());
        let proposers =
            (first_kept..=top).map(|h| first.block(h).expect("kept").header.proposer).collect();
        let received = chains
            .iter()
            .flatten()
            .map(|chain| {
                (1..=5u64)
                    .map(|r| chain.account(&Address::left_padding_from(&r.to_be_bytes())).free.0)
                    .sum()
            })
            .collect();
        let chains = chains
            .iter()
            .flatten()
            .map(|chain| {
                (first_kept..=top)
                    .map(|h| {
                        let block = chain.block(h).expect("every finalized block is stored");
                        (block.header.hash(), block.header.state_root)
                    })
                    .collect()
            })
            .collect();
        Outcome { chains, loaded, received, pruned, proposers }
    })
}

fn check_agreement(seed: u64, outcome: &Outcome) {
    let reference = &outcome.chains[0];
    for (index, chain) in outcome.chains.iter().enumerate() {
        assert_eq!(chain, reference, "seed {seed}: validator {index} disagrees with validator 0");
    }
}

#[test]
fn late_joiner_and_healed_partition_agree_on_every_block() {
    for seed in seeds() {
        let dir = tempfile::tempdir().unwrap();
        let scenario = Scenario { late: Some(3), partition: true, ..Scenario::plain(seed, 60, 40) };
        let outcome = run(scenario, dir.path());
        check_agreement(seed, &outcome);
        assert!(outcome.chains[0].len() >= 60, "seed {seed}");
        // Every transfer finalized everywhere: the recipients hold exactly what was sent.
        assert_eq!(outcome.received, vec![sent_total(40); VALIDATORS], "seed {seed}");
    }
}

/// What `count` transfers paid in all.
fn sent_total(count: u64) -> u128 {
    (0..count).map(|n| 1_000 + n as u128).sum()
}

#[test]
fn a_network_restarted_from_disk_loses_nothing_and_goes_on() {
    for seed in seeds() {
        let dir = tempfile::tempdir().unwrap();
        let before = Scenario::plain(seed, 20, 15);
        let (first, checkpoint) = resume(before, dir.path(), None);
        check_agreement(seed, &first);
        let after = Scenario { height: 40, transfers: 30, ..before };
        let (second, _) = resume(after, dir.path(), Some(checkpoint));
        // Each validator reloads at least what it had finalized, and the chain it finalized
        // before the crash is the prefix of the one after.
        for (index, loaded) in second.loaded.iter().enumerate() {
            assert!(*loaded >= first.chains[index].len() as u64, "seed {seed}: validator {index}");
        }
        check_agreement(seed, &second);
        assert_eq!(second.chains[0][..first.chains[0].len()], first.chains[0][..], "seed {seed}");
        assert_eq!(second.received, vec![sent_total(30); VALIDATORS], "seed {seed}");
    }
}

#[test]
fn same_seed_same_chain() {
    for seed in seeds() {
        let scenario = Scenario::plain(seed, 30, 20);
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = run(scenario, a.path());
        let second = run(scenario, b.path());
        check_agreement(seed, &first);
        assert_eq!(
            first.chains[0], second.chains[0],
            "seed {seed}: the chain is not deterministic"
        );
    }
}

#[test]
fn pruning_validators_keep_recent_blocks_agree_and_lose_no_state() {
    for seed in seeds() {
        let dir = tempfile::tempdir().unwrap();
        let scenario = Scenario { keep_blocks: Some(100), ..Scenario::plain(seed, 300, 30) };
        let outcome = run(scenario, dir.path());
        assert!(outcome.pruned, "seed {seed}: block 1 is pruned everywhere");
        check_agreement(seed, &outcome);
        assert_eq!(outcome.received, vec![sent_total(30); VALIDATORS], "seed {seed}");
    }
}

#[test]
fn a_byzantine_proposer_is_outvoted_and_the_chain_goes_on() {
    for seed in seeds() {
        let dir = tempfile::tempdir().unwrap();
        let scenario = Scenario { byzantine: Some(1), ..Scenario::plain(seed, 40, 20) };
        let outcome = run(scenario, dir.path());
        check_agreement(seed, &outcome);
        // None of its blocks (wrong state root) was finalized; the others' were.
        let byzantine = Address::repeat_byte(2);
        assert!(!outcome.proposers.contains(&byzantine), "seed {seed}: a corrupt block finalized");
        assert!(outcome.proposers.len() >= 40, "seed {seed}");
        assert_eq!(outcome.received, vec![sent_total(20); VALIDATORS], "seed {seed}");
    }
}

fn thousands_of_blocks(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario { late: Some(2), partition: true, ..Scenario::plain(seed, 2_000, 500) };
    let outcome = run(scenario, dir.path());
    check_agreement(seed, &outcome);
    assert!(!outcome.pruned, "seed {seed}: nothing is pruned by default");
    assert_eq!(outcome.received, vec![sent_total(500); VALIDATORS], "seed {seed}");
}

#[test]
fn thousands_of_blocks_with_a_late_joiner_and_a_partition() {
    thousands_of_blocks(seeds()[0]);
}

#[test]
fn thousands_of_blocks_for_more_seeds_slow_() {
    let seeds = match std::env::var("XIEBAO_SEED") {
        Ok(_) => seeds(),
        Err(_) => (3..=10).collect(),
    };
    for seed in seeds {
        thousands_of_blocks(seed);
    }
}

/// Validator `index`'s Ethereum address.
fn validator_address(index: usize) -> Address {
    Address::repeat_byte(index as u8 + 1)
}

/// Governance replaces validator 0 by a fifth node (a follower until then): the change takes
/// effect at the next epoch, not before. Then validators 0 and 1 are cut off: the old set
/// (2 of 4 left) could not finalize anything, the new one (3 of 4) goes on, with the fifth
/// node proposing; every connected node agrees on every block.
#[test]
fn a_validator_set_change_takes_effect_at_the_next_epoch() {
    for seed in seeds() {
        let dir = tempfile::tempdir().unwrap();
        let executor = deterministic::Runner::new(
            deterministic::Config::new()
                .with_seed(seed)
                .with_timeout(Some(Duration::from_secs(3_600))),
        );
        let dir = dir.path().to_owned();
        executor.start(async move |context| {
            let signers: Vec<ed25519::PrivateKey> =
                (0..=VALIDATORS as u64).map(ed25519::PrivateKey::from_seed).collect();
            let keys: Vec<Key> = signers.iter().map(|s| s.public_key()).collect();
            let genesis = genesis(&signers[..VALIDATORS]);
            let oracle = connected_network(&context, &keys).await;
            let mut chains = Vec::new();
            for index in 0..=VALIDATORS {
                chains.push(
                    start_node(&context, &oracle, &dir, index, &signers, &genesis, None).await,
                );
            }
            while chains.iter().any(|c| c.head().height < 3) {
                context.sleep(Duration::from_millis(100)).await;
            }
            // In one transaction: add the fifth node, remove validator 0.
            let change = Transaction {
                chain_id: CHAIN_ID,
                nonce: 0,
                calls: vec![
                    AddValidator {
                        address: validator_address(VALIDATORS),
                        consensus_key: public_bytes(&keys[VALIDATORS]),
                        p2p: String::new(),
                    }
                    .into(),
                    RemoveValidator { address: validator_address(0) }.into(),
                ],
            }
            .sign(&authority());
            chains[1].submit(&change.encode_to_vec()).expect("admitted");
            let first_new_epoch = EPOCH_LENGTH;
            while chains.iter().any(|c| c.head().height < first_new_epoch + EPOCH_LENGTH) {
                context.sleep(Duration::from_millis(100)).await;
            }
            let old: Vec<Address> = (0..VALIDATORS).map(validator_address).collect();
            let new: Vec<Address> = (1..=VALIDATORS).map(validator_address).collect();
            let members = |chain: &Chain, epoch: u64| -> Vec<Address> {
                let set = chain.epoch_validators(epoch).expect("epoch fixed");
                let mut members: Vec<Address> = set.members.iter().map(|m| m.address).collect();
                members.sort();
                members
            };
            for chain in &chains {
                assert_eq!(members(chain, 0), old, "seed {seed}: genesis set");
                assert_eq!(members(chain, 1), new, "seed {seed}: the change's epoch");
            }
            // Epoch 0 (the change was final in it) was proposed by the old set only; from
            // epoch 1 on, only the new set proposes, the fifth node among them.
            let proposers = |range: std::ops::Range<u64>| -> Vec<Address> {
                range.map(|h| chains[2].block(h).expect("kept").header.proposer).collect()
            };
            let before = proposers(1..first_new_epoch);
            assert!(before.iter().all(|p| old.contains(p)), "seed {seed}: {before:?}");
            let after = proposers(first_new_epoch..first_new_epoch + EPOCH_LENGTH);
            assert!(after.iter().all(|p| new.contains(p)), "seed {seed}: {after:?}");
            assert!(after.contains(&validator_address(VALIDATORS)), "seed {seed}: {after:?}");

            // Cut validators 0 and 1 off: only the new set can still reach a quorum.
            set_links(&oracle, &keys, |i, j| i >= 2 && j >= 2).await;
            let cut = chains[2].head().height;
            let deadline = context.current() + Duration::from_secs(120);
            while chains[2..].iter().any(|c| c.head().height < cut + 2 * EPOCH_LENGTH) {
                assert!(
                    context.current() < deadline,
                    "seed {seed}: the new set stopped at {} after the cut at {cut}",
                    chains[2].head().height
                );
                context.sleep(Duration::from_millis(100)).await;
            }
            let top = chains[2..].iter().map(|c| c.head().height).min().unwrap();
            for h in 1..=top {
                let reference = chains[2].block(h).expect("kept").header.hash();
                for chain in &chains[3..] {
                    let hash = chain.block(h).expect("kept").header.hash();
                    assert_eq!(hash, reference, "seed {seed}: block {h}");
                }
            }
        });
    }
}
