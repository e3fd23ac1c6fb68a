//! A deterministic playground over [`State`] for tests, the demo and benchmarks: named keys,
//! a genesis, a clock you advance by hand, and helpers that build and sign every call.
//!
//! Nothing here is used by the node; it only calls the public protocol API.

use alloy_primitives::{Address, B256, Bytes, U256};
use xiebao_types::order::{Domain, SignedOrder};
use xiebao_types::tx::{
    AppType, Call, Contribute, ContributeAndFinalize, CreateApp, CreateDataset, CreateWorkerpool,
    Finalize, Initialize, JoinPool, MatchOrders, PoolPolicy, Reveal,
};
use xiebao_types::{
    AppOrder, DatasetOrder, Nrlc, RequestOrder, SecretKey, Tag, Transaction, WorkerpoolOrder, ids,
};

use crate::{
    BlockContext, Event, Genesis, ProtocolError, State, VerifiedTx, apply, end_block,
    workerpool_address,
};

/// Chain id of playground chains.
pub const CHAIN_ID: u64 = 0x7865;

/// The named participants of a playground.
#[derive(Clone, Debug)]
pub struct Actors {
    /// Governance.
    pub authority: SecretKey,
    /// Pays for deals.
    pub requester: SecretKey,
    /// Owns the app.
    pub app_owner: SecretKey,
    /// Owns the dataset.
    pub dataset_owner: SecretKey,
    /// Owns the workerpool (the scheduler).
    pub pool_owner: SecretKey,
    /// Workers.
    pub workers: Vec<SecretKey>,
}

/// Prices and parameters of a deal built by [`World::deal`].
#[derive(Clone, Debug)]
pub struct DealSpec {
    /// App price per task.
    pub app_price: Nrlc,
    /// Dataset price per task (`None`: no dataset).
    pub dataset_price: Option<Nrlc>,
    /// Workerpool price per task.
    pub pool_price: Nrlc,
    /// Number of tasks.
    pub volume: u64,
    /// Trust.
    pub trust: u64,
    /// Category.
    pub category: u64,
    /// Request tag.
    pub tag: Tag,
    /// Callback address.
    pub callback: Address,
}

impl Default for DealSpec {
    fn default() -> Self {
        Self {
            app_price: Nrlc::rlc(1),
            dataset_price: None,
            pool_price: Nrlc::rlc(4),
            volume: 1,
            trust: 1,
            category: 0,
            tag: Tag::NONE,
            callback: Address::ZERO,
        }
    }
}

/// A state with actors, a clock and an app, dataset and workerpool already registered.
#[derive(Clone, Debug)]
pub struct World {
    /// The state.
    pub state: State,
    /// The actors.
    pub actors: Actors,
    /// Current block.
    pub block: BlockContext,
    /// The order domain.
    pub domain: Domain,
    /// The registered app.
    pub app: Address,
    /// The registered dataset.
    pub dataset: Address,
    /// The registered workerpool.
    pub pool: Address,
    /// The genesis the state started from.
    pub genesis: Genesis,
    /// Every transaction [`World::send`] applied, in order: replayed on a chain started from
    /// [`World::genesis`], they reproduce this world's registries, deals and tasks.
    pub transactions: Vec<xiebao_types::SignedTransaction>,
    salt: u64,
}

impl World {
    /// A world with `workers` workers, each holding `balance` RLC (as do the other actors),
    /// members of the pool with `policy`, each bonding `stake`.
    ///
    /// # Panics
    /// If setting up fails (a bug in the protocol or the kit).
    pub fn new(workers: usize, balance: Nrlc, policy: PoolPolicy, stake: Nrlc) -> Self {
        Self::with_scores(workers, balance, policy, stake, &[])
    }

    /// As [`World::new`], with worker `i` starting at score `scores[i]`.
    ///
    /// # Panics
    /// If setting up fails (a bug in the protocol or the kit).
    pub fn with_scores(
        workers: usize,
        balance: Nrlc,
        policy: PoolPolicy,
        stake: Nrlc,
        scores: &[u64],
    ) -> Self {
        let actors = Actors {
            authority: SecretKey::from_label("authority"),
            requester: SecretKey::from_label("requester"),
            app_owner: SecretKey::from_label("app owner"),
            dataset_owner: SecretKey::from_label("dataset owner"),
            pool_owner: SecretKey::from_label("pool owner"),
            workers: (0..workers).map(|i| SecretKey::from_label(&format!("worker {i}"))).collect(),
        };
        let mut balances: Vec<(Address, Nrlc)> =
            [&actors.requester, &actors.app_owner, &actors.dataset_owner, &actors.pool_owner]
                .into_iter()
                .chain(&actors.workers)
                .map(|k| (k.address(), balance))
                .collect();
        balances.push((actors.authority.address(), Nrlc::ZERO));
        let genesis = Genesis {
            chain_id: CHAIN_ID,
            verifying_contract: Address::repeat_byte(0x0b),
            authority: actors.authority.address(),
            balances,
            categories: Genesis::default_categories(),
            validators: vec![(actors.authority.address(), B256::repeat_byte(1))],
            scores: actors
                .workers
                .iter()
                .map(|k| k.address())
                .zip(scores.iter().copied())
                .collect(),
            epoch_length: Genesis::DEFAULT_EPOCH_LENGTH,
        };
        let state = State::genesis(&genesis);
        let domain = state.domain();
        let mut world = Self {
            state,
            actors,
            block: BlockContext { height: 1, timestamp: 1_700_000_000 },
            domain,
            app: Address::ZERO,
            dataset: Address::ZERO,
            pool: Address::ZERO,
            genesis,
            transactions: Vec::new(),
            salt: 0,
        };
        let app = CreateApp {
            owner: world.actors.app_owner.address(),
            name: "demo".into(),
            app_type: AppType::Wasm,
            multiaddr: Bytes::from_static(b"/ipfs/app"),
            checksum: B256::repeat_byte(0xaa),
            mrenclave: Bytes::new(),
        };
        let dataset = CreateDataset {
            owner: world.actors.dataset_owner.address(),
            name: "frames".into(),
            multiaddr: Bytes::from_static(b"/ipfs/dataset"),
            checksum: B256::repeat_byte(0xdd),
        };
        let pool = CreateWorkerpool {
            owner: world.actors.pool_owner.address(),
            description: "pool".into(),
            policy,
        };
        world.app = crate::app_address(&app);
        world.dataset = crate::dataset_address(&dataset);
        world.pool = workerpool_address(&pool);
        let authority = world.actors.authority.clone();
        world.send(&authority, vec![app.into(), dataset.into(), pool.into()]).expect("registries");
        for worker in world.actors.workers.clone() {
            world
                .send(&worker, vec![JoinPool { workerpool: world.pool, stake }.into()])
                .expect("workers join");
        }
        world
    }

    /// Signs `calls` from `key` with its next nonce and applies them in the current block.
    ///
    /// # Errors
    /// Whatever `apply` rejects.
    pub fn send(&mut self, key: &SecretKey, calls: Vec<Call>) -> Result<Vec<Event>, ProtocolError> {
        let verified = self.sign(key, calls);
        let events = apply(&mut self.state, &verified, &self.block)?;
        self.transactions.push(verified.signed());
        Ok(events)
    }

    /// Builds and verifies (but does not apply) a transaction.
    pub fn sign(&self, key: &SecretKey, calls: Vec<Call>) -> VerifiedTx {
        let nonce = self.state.account(&key.address()).nonce;
        let signed = Transaction { chain_id: CHAIN_ID, nonce, calls }.sign(key);
        VerifiedTx::new(signed, &self.domain).expect("kit signatures are valid")
    }

    /// Ends the current block and starts one `seconds` later; returns the end-of-block events.
    pub fn advance(&mut self, seconds: u64) -> Vec<Event> {
        let events = end_block(&mut self.state, &self.block);
        self.block = BlockContext {
            height: self.block.height + 1,
            timestamp: self.block.timestamp + seconds,
        };
        events
    }

    fn next_salt(&mut self) -> B256 {
        self.salt += 1;
        B256::from(U256::from(self.salt))
    }

    /// The four signed orders of a deal described by `spec`.
    pub fn orders(&mut self, spec: &DealSpec) -> MatchOrders {
        let mut app = AppOrder {
            app: self.app,
            appprice: spec.app_price.to_u256(),
            volume: U256::from(1_000_000),
            tag: Tag::NONE,
            datasetrestrict: Address::ZERO,
            workerpoolrestrict: Address::ZERO,
            requesterrestrict: Address::ZERO,
            salt: self.next_salt(),
            sign: Bytes::new(),
        };
        app.sign_with(&self.domain, &self.actors.app_owner);
        let dataset = match spec.dataset_price {
            None => DatasetOrder::none(),
            Some(price) => {
                let mut order = DatasetOrder {
                    dataset: self.dataset,
                    datasetprice: price.to_u256(),
                    volume: U256::from(1_000_000),
                    tag: Tag::NONE,
                    apprestrict: Address::ZERO,
                    workerpoolrestrict: Address::ZERO,
                    requesterrestrict: Address::ZERO,
                    salt: self.next_salt(),
                    sign: Bytes::new(),
                };
                order.sign_with(&self.domain, &self.actors.dataset_owner);
                order
            }
        };
        let mut workerpool = WorkerpoolOrder {
            workerpool: self.pool,
            workerpoolprice: spec.pool_price.to_u256(),
            volume: U256::from(1_000_000),
            tag: spec.tag,
            category: U256::from(spec.category),
            trust: U256::from(spec.trust.max(100)),
            apprestrict: Address::ZERO,
            datasetrestrict: Address::ZERO,
            requesterrestrict: Address::ZERO,
            salt: self.next_salt(),
            sign: Bytes::new(),
        };
        workerpool.sign_with(&self.domain, &self.actors.pool_owner);
        let mut request = RequestOrder {
            app: self.app,
            appmaxprice: spec.app_price.to_u256(),
            dataset: dataset.dataset,
            datasetmaxprice: spec.dataset_price.unwrap_or_default().to_u256(),
            workerpool: Address::ZERO,
            workerpoolmaxprice: spec.pool_price.to_u256(),
            requester: self.actors.requester.address(),
            volume: U256::from(spec.volume),
            tag: spec.tag,
            category: U256::from(spec.category),
            trust: U256::from(spec.trust),
            beneficiary: self.actors.requester.address(),
            callback: spec.callback,
            params: "frame-{idx}".into(),
            salt: self.next_salt(),
            sign: Bytes::new(),
        };
        request.sign_with(&self.domain, &self.actors.requester);
        MatchOrders { app, dataset, workerpool, request }
    }

    /// Signs the four orders again (after a test edited them) with their owners' keys.
    pub fn resign(&self, orders: &mut MatchOrders) {
        let domain = self.domain;
        orders.app.sign_with(&domain, &self.actors.app_owner);
        if !orders.dataset.dataset.is_zero() {
            orders.dataset.sign_with(&domain, &self.actors.dataset_owner);
        }
        orders.workerpool.sign_with(&domain, &self.actors.pool_owner);
        orders.request.sign_with(&domain, &self.actors.requester);
    }

    /// Matches already built orders (sent by the requester); returns the deal id.
    ///
    /// # Errors
    /// Whatever matchOrders rejects.
    pub fn match_orders(&mut self, orders: MatchOrders) -> Result<B256, ProtocolError> {
        let requester = self.actors.requester.clone();
        let events = self.send(&requester, vec![orders.into()])?;
        Ok(events
            .iter()
            .find_map(|e| match e {
                Event::OrdersMatched { deal, .. } => Some(*deal),
                _ => None,
            })
            .expect("a match emits OrdersMatched"))
    }

    /// Matches a deal described by `spec` (sent by the requester); returns its id.
    ///
    /// # Errors
    /// Whatever matchOrders rejects.
    pub fn deal(&mut self, spec: &DealSpec) -> Result<B256, ProtocolError> {
        let orders = self.orders(spec);
        self.match_orders(orders)
    }

    /// The id of task `idx` of `deal`.
    pub fn task_id(&self, deal: &B256, idx: u64) -> B256 {
        let first = self.state.deals()[deal].bot_first;
        ids::task_id(deal, first + U256::from(idx))
    }

    /// Initializes tasks `idxs` of `deal` in one transaction from the pool owner.
    ///
    /// # Errors
    /// Whatever initialize rejects.
    pub fn initialize(
        &mut self,
        deal: &B256,
        idxs: impl IntoIterator<Item = u64>,
    ) -> Result<Vec<B256>, ProtocolError> {
        let first = self.state.deals()[deal].bot_first;
        let idxs: Vec<u64> = idxs.into_iter().collect();
        let calls = idxs
            .iter()
            .map(|i| Initialize { deal_id: *deal, idx: first + U256::from(*i) }.into())
            .collect();
        let owner = self.actors.pool_owner.clone();
        self.send(&owner, calls)?;
        Ok(idxs.iter().map(|i| self.task_id(deal, *i)).collect())
    }

    /// The pool owner's authorization for `worker` on `task`.
    pub fn authorization(&self, worker: Address, task: &B256) -> Bytes {
        self.actors.pool_owner.eth_sign(&ids::authorization_hash(&worker, task, &Address::ZERO))
    }

    /// The contribute call of worker `w` with `digest` on `task`.
    pub fn contribute_call(&self, w: usize, task: &B256, digest: &B256) -> Call {
        let worker = self.actors.workers[w].address();
        Contribute {
            task_id: *task,
            result_hash: ids::result_hash(task, digest),
            result_seal: ids::result_seal(&worker, task, digest),
            enclave_challenge: Address::ZERO,
            enclave_sign: Bytes::new(),
            authorization_sign: self.authorization(worker, task),
        }
        .into()
    }

    /// Worker `w` contributes `digest` to `task`.
    ///
    /// # Errors
    /// Whatever contribute rejects.
    pub fn contribute(
        &mut self,
        w: usize,
        task: &B256,
        digest: &B256,
    ) -> Result<Vec<Event>, ProtocolError> {
        let call = self.contribute_call(w, task, digest);
        let worker = self.actors.workers[w].clone();
        self.send(&worker, vec![call])
    }

    /// Worker `w` reveals `digest` on `task`.
    ///
    /// # Errors
    /// Whatever reveal rejects.
    pub fn reveal(
        &mut self,
        w: usize,
        task: &B256,
        digest: &B256,
    ) -> Result<Vec<Event>, ProtocolError> {
        let worker = self.actors.workers[w].clone();
        self.send(&worker, vec![Reveal { task_id: *task, result_digest: *digest }.into()])
    }

    /// The pool owner finalizes `task`.
    ///
    /// # Errors
    /// Whatever finalize rejects.
    pub fn finalize(&mut self, task: &B256) -> Result<Vec<Event>, ProtocolError> {
        let owner = self.actors.pool_owner.clone();
        let call = Finalize {
            task_id: *task,
            results: Bytes::from_static(b"/ipfs/result"),
            results_callback: Bytes::new(),
        };
        self.send(&owner, vec![call.into()])
    }

    /// The contributeAndFinalize call of worker `w` with `digest` on `task`.
    pub fn contribute_and_finalize_call(&self, w: usize, task: &B256, digest: &B256) -> Call {
        let worker = self.actors.workers[w].address();
        ContributeAndFinalize {
            task_id: *task,
            result_digest: *digest,
            results: Bytes::from_static(b"/ipfs/result"),
            results_callback: Bytes::new(),
            enclave_challenge: Address::ZERO,
            enclave_sign: Bytes::new(),
            authorization_sign: self.authorization(worker, task),
        }
        .into()
    }

    /// Free balance of `address`.
    pub fn free(&self, address: Address) -> Nrlc {
        self.state.account(&address).free
    }

    /// Frozen balance of `address`.
    pub fn frozen(&self, address: Address) -> Nrlc {
        self.state.account(&address).frozen
    }
}
