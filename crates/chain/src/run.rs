//! Wiring one validator: p2p, block broadcast, backfill, marshal, simplex, the finalizer,
//! transaction relay and the RPC server, on the commonware tokio runtime.

use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alloy_primitives::{B256, Bytes};
use commonware_broadcast::buffered;
use commonware_codec::DecodeExt as _;
use commonware_consensus::marshal::{
    self, Start, core::Actor as Marshal, resolver::p2p as marshal_resolver, standard::Inline,
};
use commonware_consensus::simplex::elector::RoundRobin;
use commonware_consensus::simplex::{self, ForwardPolicy, SkipBudget, SkipPolicy};
use commonware_consensus::types::{Epoch, Epocher as _, FixedEpocher, ViewDelta};
use commonware_cryptography::certificate::Verifier as _;
use commonware_cryptography::{ChaCha20Poly1305, Sha256, Signer as _, ed25519};
use commonware_p2p::authenticated::lookup;
use commonware_p2p::utils::mux::{Builder as _, Muxer};
use commonware_p2p::{Address as PeerAddress, AddressableManager as _, Recipients};
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{
    Clock, Metrics, Quota, Runner as _, Spawner, Storage, Supervisor, tokio as cw_tokio,
};
use commonware_storage::archive::immutable;
use commonware_stream::cups::{self, Cups};
use commonware_stream::sake::{self, Sake};
use commonware_utils::ordered::Map;
use commonware_utils::vec::NonEmptyVec;
use commonware_utils::{NZDuration, NZU16, NZU32, NZU64, NZUsize};
use futures::StreamExt as _;
use xiebao_protocol::FinishedTasks;
use xiebao_store::Store;

use crate::ChainError;
use crate::app::{App, Chain, Finalizer, Scheme, genesis_digest};
use crate::block::{BLOCK_SIZE_MAX_BYTES, ChainBlock, digest_of};
use crate::config::{GenesisFile, NodeConfig, read_seed};
use crate::epoch::EpochSchemes;

/// p2p channels.
const CHANNEL_VOTES: u64 = 0;
const CHANNEL_CERTIFICATES: u64 = 1;
const CHANNEL_RESOLVER: u64 = 2;
const CHANNEL_BLOCKS: u64 = 3;
const CHANNEL_BACKFILL: u64 = 4;
const CHANNEL_TXS: u64 = 5;
/// Consensus signature namespace; renaming it is a hard fork.
const NAMESPACE: &[u8] = b"_XIEBAO_CHAIN_CONSENSUS";
/// The largest validator set the p2p limits are sized for.
const MAX_VALIDATORS: usize = 64;
/// p2p handshake namespace.
const P2P_NAMESPACE: &[u8] = b"_XIEBAO_CHAIN_P2P";
/// Transactions waiting to be relayed; more are not relayed (they stay pending here).
const GOSSIP_QUEUE_MAX: usize = 4_096;
/// A relayed batch of transactions holds at most this many bytes.
const TX_BATCH_MAX_BYTES: usize = 2 << 20;

/// The ed25519 consensus key of a 32-byte seed.
pub fn consensus_key(seed: &[u8; 32]) -> ed25519::PrivateKey {
    ed25519::PrivateKey::decode(bytes::Bytes::copy_from_slice(seed))
        .expect("any 32 bytes are an ed25519 seed")
}

/// The public key as 32 bytes.
pub fn public_bytes(key: &ed25519::PublicKey) -> B256 {
    B256::from_slice(key.as_ref())
}

fn public_key(bytes: &B256) -> Result<ed25519::PublicKey, ChainError> {
    ed25519::PublicKey::decode(bytes::Bytes::copy_from_slice(bytes.as_slice()))
        .map_err(|_| ChainError::Genesis(format!("{bytes} is not an ed25519 public key")))
}

/// Runs a validator until the process is stopped. Prints nothing; logs through `tracing`.
///
/// # Errors
/// [`ChainError`] for a bad configuration or store; consensus failures halt the process.
pub fn run(config: NodeConfig) -> Result<(), ChainError> {
    let genesis = GenesisFile::load(&config.genesis)?;
    let seed = read_seed(&config.consensus_key_file)?;
    let signer = consensus_key(&seed);
    let me = signer.public_key();
    let me_bytes = public_bytes(&me);
    let mut config_peers = Vec::new();
    for peer in &config.peers {
        config_peers.push((public_key(&peer.consensus_key)?, PeerAddress::from(peer.address)));
    }
    let genesis_address =
        genesis.validators.iter().find(|v| v.consensus_key == me_bytes).map(|v| v.address);
    let (chain, genesis_block) = open_chain(
        &config.data_dir,
        &genesis,
        genesis_address.unwrap_or(alloy_primitives::Address::ZERO),
        me_bytes,
        config.timing.clone(),
    )?;
    let known = chain.current_validators().iter().any(|v| v.consensus_key == me_bytes);
    if genesis_address.is_none() && !known {
        tracing::warn!(key = %me_bytes, "not a validator: following the chain until added");
    }

    let runtime = cw_tokio::Config::new().with_storage_directory(config.data_dir.join("consensus"));
    let executor = cw_tokio::Runner::new(runtime);
    executor.start(async move |context| {
        chain.set_metrics(crate::app::NodeMetrics::register(&context));
        if let Some(listen) = config.metrics_listen {
            serve_metrics(context.child("metrics"), listen).await;
        }
        let handshake = Cups::<_, ChaCha20Poly1305>::new(
            Sake {
                signer: signer.clone(),
                synchrony_bound: Duration::from_secs(5),
                max_handshake_age: Duration::from_secs(10),
                version: sake::Version::V1,
            },
            cups::Version::V1,
        );
        let p2p_config = lookup::Config::local(
            handshake,
            P2P_NAMESPACE,
            config.p2p_listen,
            NZUsize!(MAX_VALIDATORS + 4),
            max_message_size(MAX_VALIDATORS),
            NZUsize!(4_096),
        );
        let (mut network, oracle) = lookup::Network::new(context.child("network"), p2p_config);
        // Every validator of this and the next epoch, at its on-chain address or (genesis
        // validators) the one configured; tracked again when a finalized block changes them.
        let track = {
            let chain = chain.clone();
            let oracle = oracle.clone();
            move |id: u64| {
                let _ = oracle.clone().track(id, peer_map(&chain, &config_peers, &me_bytes));
            }
        };
        track(chain.head().height);
        chain.set_validators_hook(Box::new(track));
        let channels = Channels {
            votes: network.register(CHANNEL_VOTES, QUOTA),
            certificates: network.register(CHANNEL_CERTIFICATES, QUOTA),
            resolver: network.register(CHANNEL_RESOLVER, QUOTA),
            blocks: network.register(CHANNEL_BLOCKS, QUOTA),
            backfill: network.register(CHANNEL_BACKFILL, QUOTA),
            txs: network.register(CHANNEL_TXS, QUOTA),
        };
        network.start();
        let finalizer = Finalizer::start(chain.clone());
        start_validator(
            context.child("validator"),
            chain.clone(),
            signer,
            genesis_block,
            config.timing.clone(),
            channels,
            oracle.clone(),
            oracle,
            finalizer,
            "node",
        )
        .await;

        let (rpc_address, _handle) = crate::rpc::serve(
            chain.clone(),
            config.rpc_listen,
            config.data_dir.join("market.jsonl"),
            xiebao_rpc::Cors::from_list(&config.rpc_cors),
        )
        .await
        .expect("the RPC address can be bound");
        tracing::info!(%rpc_address, p2p = %config.p2p_listen, "validator running");
        futures::future::pending::<()>().await;
    });
    Ok(())
}

/// The p2p addresses of the validators of the next block's epoch and of the state's current
/// set: on-chain addresses, else the configured ones; this node left out.
fn peer_map(
    chain: &Chain,
    configured: &[(ed25519::PublicKey, PeerAddress)],
    me: &B256,
) -> Map<ed25519::PublicKey, PeerAddress> {
    let mut peers = std::collections::BTreeMap::new();
    let epoch = chain.epoch_validators(chain.next_epoch()).unwrap_or_default();
    for member in epoch.members.into_iter().chain(chain.current_validators()) {
        if member.consensus_key == *me {
            continue;
        }
        let Some(key) = crate::epoch::decode_key(&member.consensus_key) else { continue };
        let configured = configured.iter().find(|(k, _)| *k == key).map(|(_, a)| a.clone());
        let on_chain = member.p2p.parse::<std::net::SocketAddr>().ok().map(PeerAddress::from);
        if let Some(address) = on_chain.or(configured) {
            peers.insert(key, address);
        }
    }
    for (key, address) in configured {
        peers.entry(key.clone()).or_insert_with(|| address.clone());
    }
    let peers: Vec<_> = peers.into_iter().collect();
    peers.try_into().expect("keys are unique")
}

/// Serves the runtime's Prometheus registry (ours, consensus', p2p's) at `GET /metrics`.
async fn serve_metrics(context: cw_tokio::Context, listen: std::net::SocketAddr) {
    use axum::{Router, routing::get};
    let listener =
        tokio::net::TcpListener::bind(listen).await.expect("the metrics address can be bound");
    let context = Arc::new(context);
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let context = context.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    context.encode(),
                )
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
}

/// Opens (or initializes from `genesis`) the chain stored under `data_dir`, creating it.
///
/// # Errors
/// [`ChainError::Config`] if the folder cannot be created, [`ChainError::Store`] if the store
/// cannot be opened or is inconsistent.
pub fn open_chain(
    data_dir: &std::path::Path,
    genesis: &GenesisFile,
    address: alloy_primitives::Address,
    node_key: B256,
    timing: crate::config::Timing,
) -> Result<(Arc<Chain>, ChainBlock), ChainError> {
    std::fs::create_dir_all(data_dir).map_err(|e| ChainError::Config {
        path: data_dir.to_owned(),
        reason: format!("cannot create the data dir: {e}"),
    })?;
    let store = Store::open(&data_dir.join("chain.redb"))?;
    let (genesis_state, genesis_block) = genesis.genesis_block();
    // Finished tasks leave memory once persisted (read back from the store by the RPC).
    let (state, head) = match store.load(FinishedTasks::Evict)? {
        Some((state, head)) => (state, head),
        None => {
            let mut state = genesis_state;
            state.set_finished_tasks(FinishedTasks::Evict);
            store.init(&mut state, &genesis_block.header)?;
            (state, genesis_block.header.clone())
        }
    };
    tracing::info!(height = head.height, %address, "loaded chain");
    let chain = Arc::new(Chain::new(state, head, store, address, node_key, timing));
    Ok((chain, ChainBlock::new(genesis_block)))
}

/// The largest p2p message a network of `validators` carries.
pub fn max_message_size(validators: usize) -> u32 {
    let participants = validators as u32;
    let simplex_payload =
        simplex::max_payload_size::<Scheme, commonware_cryptography::sha256::Digest>(participants);
    let marshal_payload = marshal::max_payload_size::<
        marshal::standard::Standard<ChainBlock>,
        Scheme,
    >(participants, &BLOCK_SIZE_MAX_BYTES);
    commonware_p2p::max_message_size(&[simplex_payload, marshal_payload, TX_BATCH_MAX_BYTES])
}

/// Per-peer rate limit on each p2p channel: 1,000 messages a second, in bursts of at most
/// 128 (see `QUOTA_BURST`).
pub const QUOTA: Quota = Quota::per_second(NZU32!(1_000)).allow_burst(QUOTA_BURST);

/// The largest burst one peer may send on one channel. Each channel's inbound mailbox and the
/// router's are preallocated at (peers × burst) messages of about 900 bytes: at the default
/// burst (the rate, 1,000) that was 860 MiB resident per node before a single block; at 128 it
/// is about 90 MiB, still far above what a round of consensus or a repair sends at once.
const QUOTA_BURST: std::num::NonZeroU32 = NZU32!(128);

/// The p2p channels a validator uses, as (sender, receiver) pairs.
pub struct Channels<S, R> {
    /// Consensus votes.
    pub votes: (S, R),
    /// Consensus certificates.
    pub certificates: (S, R),
    /// Simplex's resolver.
    pub resolver: (S, R),
    /// Block broadcast.
    pub blocks: (S, R),
    /// Marshal's backfill of finalized blocks.
    pub backfill: (S, R),
    /// Transaction relay.
    pub txs: (S, R),
}

/// Starts one validator's actors (broadcast, backfill, marshal, simplex, transaction relay)
/// on `context`, over any p2p network and runtime (tokio in production, the deterministic
/// simulator in tests). Finalized blocks go to `finalizer`; storage partitions are named
/// under `partition_prefix` (unique per validator where several share a storage).
#[allow(clippy::too_many_arguments, reason = "the wiring takes each part once")]
pub async fn start_validator<E, S, R, B, P>(
    context: E,
    chain: Arc<Chain>,
    signer: ed25519::PrivateKey,
    genesis_block: ChainBlock,
    timing: crate::config::Timing,
    channels: Channels<S, R>,
    blocker: B,
    peers: P,
    finalizer: Finalizer,
    partition_prefix: &str,
) where
    E: Clock + rand_core::CryptoRng + Spawner + Storage + Metrics + Supervisor,
    S: commonware_p2p::Sender<PublicKey = ed25519::PublicKey>,
    R: commonware_p2p::Receiver<PublicKey = ed25519::PublicKey>,
    B: commonware_p2p::Blocker<PublicKey = ed25519::PublicKey> + Clone,
    P: commonware_p2p::Provider<PublicKey = ed25519::PublicKey> + Clone,
{
    let me = signer.public_key();
    let schemes = EpochSchemes::new(chain.clone(), NAMESPACE, signer.clone());
    let epoch_length = NonZeroU64::new(chain.epoch_length()).expect("genesis checks it");
    let page_cache = CacheRef::new(NZU16!(16_384), NZUsize!(1_000));
    let mailbox_size = NZUsize!(4_096);

    let resolver = marshal_resolver::init(
        context.child("marshal_resolver"),
        marshal_resolver::Config {
            public_key: me.clone(),
            peer_provider: peers.clone(),
            blocker: blocker.clone(),
            mailbox_size,
            fetch_timeout: NZDuration!(Duration::from_secs(2)),
            fetch_retry_delay: Duration::from_millis(100),
            priority_requests: false,
            priority_responses: false,
        },
        channels.backfill,
    );
    let (broadcast_engine, buffer) = buffered::Engine::new(
        context.child("broadcast"),
        buffered::Config {
            public_key: me.clone(),
            mailbox_size,
            deque_size: 16,
            priority: false,
            codec_config: BLOCK_SIZE_MAX_BYTES,
            peer_provider: peers.clone(),
            strategy: commonware_parallel::Sequential,
        },
    );
    broadcast_engine.start(channels.blocks);

    let archive = |name: &str, codec_config| immutable::Config {
        metadata_partition: format!("{partition_prefix}-{name}-metadata"),
        freezer_table_partition: format!("{partition_prefix}-{name}-freezer-table"),
        freezer_table_initial_size: 4_096,
        freezer_table_resize_frequency: 4,
        freezer_table_resize_chunk_size: 16_384,
        freezer_key_partition: format!("{partition_prefix}-{name}-freezer-key"),
        freezer_key_page_cache: page_cache.clone(),
        freezer_value_partition: format!("{partition_prefix}-{name}-freezer-value"),
        freezer_value_target_size: 1 << 24,
        freezer_value_compression: None,
        ordinal_partition: format!("{partition_prefix}-{name}-ordinal"),
        items_per_section: NZU64!(4_096),
        freezer_key_write_buffer: NZUsize!(1 << 20),
        freezer_value_write_buffer: NZUsize!(1 << 20),
        ordinal_write_buffer: NZUsize!(1 << 20),
        replay_buffer: NZUsize!(1 << 20),
        codec_config,
    };
    let finalizations = immutable::Archive::init(
        context.child("finalizations_by_height"),
        archive("finalizations", Scheme::certificate_codec_config_unbounded()),
    )
    .await
    .expect("the finalizations archive opens");
    let finalized_blocks = immutable::Archive::init(
        context.child("finalized_blocks"),
        archive("blocks", BLOCK_SIZE_MAX_BYTES),
    )
    .await
    .expect("the blocks archive opens");
    let epocher = FixedEpocher::new(epoch_length);
    let (marshal_actor, marshal_mailbox, _floor) = Marshal::init(
        context.child("marshal"),
        finalizations,
        finalized_blocks,
        marshal::Config {
            provider: schemes.clone(),
            epocher: epocher.clone(),
            start: Start::Genesis(commonware_cryptography::Digested::precomputed(
                genesis_block.clone(),
                genesis_digest(&genesis_block.0),
            )),
            partition_prefix: format!("{partition_prefix}-marshal"),
            mailbox_size,
            view_retention: ViewDelta::new(64),
            prunable_items_per_section: NZU64!(4_096),
            page_cache: page_cache.clone(),
            replay_buffer: NZUsize!(1 << 20),
            key_write_buffer: NZUsize!(1 << 20),
            value_write_buffer: NZUsize!(1 << 20),
            block_codec_config: BLOCK_SIZE_MAX_BYTES,
            max_repair: NZUsize!(32),
            max_pending_acks: NZUsize!(16),
            strategy: commonware_parallel::Sequential,
        },
    )
    .await;
    marshal_actor.start(finalizer, buffer, resolver);

    let pruning = marshal_mailbox.clone();
    chain.set_pruner(Box::new(move |height| {
        pruning.prune(commonware_consensus::types::Height::new(height));
    }));
    let inline = Inline::new(
        context.child("application"),
        App::new(chain.clone()),
        marshal_mailbox.clone(),
        epocher.clone(),
    );

    // One simplex engine per epoch, over channels multiplexed by epoch. The finalizer tells
    // when an epoch's last block is final; the next epoch's engine starts on it.
    let (boundaries, mut next_epochs) = futures::channel::mpsc::unbounded::<u64>();
    chain.set_epoch_hook(Box::new(move |epoch| {
        let _ = boundaries.unbounded_send(epoch);
    }));
    let (vote_mux, mut votes, vote_backup) =
        Muxer::builder(context.child("vote_mux"), channels.votes.0, channels.votes.1)
            .with_backup()
            .build();
    vote_mux.start();
    let (certificate_mux, mut certificates, certificate_backup) = Muxer::builder(
        context.child("certificate_mux"),
        channels.certificates.0,
        channels.certificates.1,
    )
    .with_backup()
    .build();
    certificate_mux.start();
    let (resolver_mux, mut resolvers) =
        Muxer::new(context.child("resolver_mux"), channels.resolver.0, channels.resolver.1);
    resolver_mux.start();
    let current = Arc::new(AtomicU64::new(chain.next_epoch()));
    // Votes or certificates of a later epoch: this node missed a boundary; fetch it from
    // the sender.
    for mut backup in [vote_backup, certificate_backup] {
        let current = current.clone();
        let marshal = marshal_mailbox.clone();
        let epocher = epocher.clone();
        context.child("epoch_backup").spawn(move |_| async move {
            while let Some((their_epoch, (from, _))) = backup.recv().await {
                let ours = current.load(Ordering::Relaxed);
                if their_epoch > ours
                    && let Some(last) = epocher.last(Epoch::new(ours))
                {
                    marshal.hint_finalized(last, NonEmptyVec::new(from));
                }
            }
        });
    }
    let engines = context.child("epochs");
    let genesis_hash = genesis_block.0.header.hash();
    let prefix = partition_prefix.to_owned();
    let orchestrated = chain.clone();
    context.child("orchestrator").spawn(move |_| async move {
        let chain = orchestrated;
        let mut epoch = chain.next_epoch();
        let mut active: Option<commonware_runtime::Handle<()>> = None;
        loop {
            if let Some(engine) = active.take() {
                engine.abort();
            }
            current.store(epoch, Ordering::Relaxed);
            let floor = match epoch.checked_sub(1) {
                None => genesis_hash,
                Some(previous) => {
                    let last = epocher.last(Epoch::new(previous)).expect("epochs are bounded");
                    chain.block_hash(last.get()).expect("epoch boundaries are kept")
                }
            };
            let scheme = schemes.scheme(epoch).expect("the state fixed this epoch's validators");
            let member = schemes.is_member(epoch);
            let engine = simplex::Engine::new(
                engines.child("engine").with_attribute("epoch", epoch),
                simplex::Config {
                    scheme: (*scheme).clone(),
                    elector: RoundRobin::<Sha256>::default(),
                    blocker: blocker.clone(),
                    automaton: inline.clone(),
                    relay: inline.clone(),
                    reporter: inline.clone(),
                    partition: format!("{prefix}-simplex-e{epoch}"),
                    mailbox_size: NZUsize!(4_096),
                    epoch: Epoch::new(epoch),
                    floor: simplex::Floor::Genesis(digest_of(floor)),
                    replay_buffer: NZUsize!(1 << 20),
                    write_buffer: NZUsize!(1 << 20),
                    leader_timeout: Duration::from_millis(timing.leader_timeout_ms),
                    certification_timeout: Duration::from_millis(timing.certification_timeout_ms),
                    timeout_retry: Duration::from_secs(2),
                    fetch_timeout: NZDuration!(Duration::from_secs(1)),
                    fetch_retry_delay: Duration::from_millis(100),
                    view_retention: ViewDelta::new(64),
                    skip: SkipPolicy::Enabled {
                        // Must exceed the certification timeout (slow block-interval profiles).
                        timeout: Duration::from_secs(5)
                            .max(Duration::from_millis(timing.certification_timeout_ms + 1_000)),
                        budget: SkipBudget::Participants,
                    },
                    page_cache: page_cache.clone(),
                    strategy: commonware_parallel::Sequential,
                    forward: ForwardPolicy::Disabled,
                    track_historical_votes: false,
                },
            );
            let (Ok(vote), Ok(certificate), Ok(resolver)) = (
                votes.register(epoch).await,
                certificates.register(epoch).await,
                resolvers.register(epoch).await,
            ) else {
                tracing::warn!(epoch, "consensus channels closed");
                return;
            };
            active = Some(engine.start(vote, certificate, resolver));
            tracing::info!(epoch, member, "entered epoch");
            // Wait for this epoch's last block (or a later one, when catching up).
            loop {
                let Some(mut next) = next_epochs.next().await else { return };
                while let Ok(later) = next_epochs.try_recv() {
                    next = next.max(later);
                }
                if next > epoch {
                    epoch = next;
                    break;
                }
            }
        }
    });

    // Transaction relay: batches out, admission in.
    let (mut tx_sender, mut tx_receiver) = channels.txs;
    let (gossip, mut outgoing) = tokio::sync::mpsc::channel::<Vec<u8>>(GOSSIP_QUEUE_MAX);
    chain.set_gossip(gossip);
    context.child("tx_relay_out").spawn(move |_| async move {
        while let Some(first) = outgoing.recv().await {
            let mut batch = vec![Bytes::from(first)];
            let mut size = batch[0].len();
            while size < TX_BATCH_MAX_BYTES / 2 {
                match outgoing.try_recv() {
                    Ok(tx) => {
                        size += tx.len();
                        batch.push(Bytes::from(tx));
                    }
                    Err(_) => break,
                }
            }
            let _ = tx_sender.send(Recipients::All, alloy_rlp::encode(&batch), false);
        }
    });
    let relay_chain = chain.clone();
    context.child("tx_relay_in").spawn(move |_| async move {
        while let Ok((_, message)) = tx_receiver.recv().await {
            let bytes = message.as_ref();
            let Ok(batch) = <Vec<Bytes> as alloy_rlp::Decodable>::decode(&mut &bytes[..]) else {
                continue;
            };
            for tx in batch {
                relay_chain.admit_relayed(&tx);
            }
        }
    });
}
