//! Consensus epochs: each epoch's validators come from the chain's finalized state (fixed by
//! the last block of the epoch before), so governance changes take effect at the next epoch.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use alloy_primitives::B256;
use commonware_codec::DecodeExt as _;
use commonware_consensus::types::Epoch;
use commonware_cryptography::certificate::{Provider, Scoped};
use commonware_cryptography::ed25519;
use commonware_utils::TryCollect as _;
use commonware_utils::ordered::Set;

use crate::app::{Chain, Scheme};

/// An ed25519 public key from its 32 bytes, if they are one.
pub(crate) fn decode_key(bytes: &B256) -> Option<ed25519::PublicKey> {
    ed25519::PublicKey::decode(bytes::Bytes::copy_from_slice(bytes.as_slice())).ok()
}

/// Each epoch's consensus scheme, built from the validators the chain's state fixed for it:
/// a signing scheme where this node is a member, a verifying one elsewhere. Marshal asks it
/// for any epoch whose certificates it checks; the epoch engines for their own epoch.
#[derive(Clone)]
pub struct EpochSchemes {
    chain: Arc<Chain>,
    namespace: &'static [u8],
    signer: ed25519::PrivateKey,
    cache: Arc<Mutex<BTreeMap<u64, Arc<Scheme>>>>,
}

impl EpochSchemes {
    /// Schemes for `chain`'s epochs, signing with `signer` where it is a member.
    pub(crate) fn new(
        chain: Arc<Chain>,
        namespace: &'static [u8],
        signer: ed25519::PrivateKey,
    ) -> Self {
        Self { chain, namespace, signer, cache: Arc::default() }
    }

    /// The participants of `epoch` (consensus keys that do not decode are left out, the same
    /// way on every node), or `None` until the state fixes them.
    pub(crate) fn participants(&self, epoch: u64) -> Option<Set<ed25519::PublicKey>> {
        let set = self.chain.epoch_validators(epoch)?;
        let keys: Vec<ed25519::PublicKey> =
            set.members.iter().filter_map(|m| decode_key(&m.consensus_key)).collect();
        if keys.is_empty() {
            return None;
        }
        keys.into_iter().try_collect().ok()
    }

    /// The scheme of `epoch`, once the state has fixed its validators.
    pub(crate) fn scheme(&self, epoch: u64) -> Option<Arc<Scheme>> {
        if let Some(scheme) = self.cache.lock().expect("never poisoned").get(&epoch) {
            return Some(scheme.clone());
        }
        let participants = self.participants(epoch)?;
        let scheme = Scheme::signer(self.namespace, participants.clone(), self.signer.clone())
            .unwrap_or_else(|| Scheme::verifier(self.namespace, participants));
        let scheme = Arc::new(scheme);
        self.cache.lock().expect("never poisoned").insert(epoch, scheme.clone());
        Some(scheme)
    }

    /// Whether this node votes in `epoch`.
    pub(crate) fn is_member(&self, epoch: u64) -> bool {
        use commonware_cryptography::Signer as _;
        self.participants(epoch)
            .is_some_and(|set| set.position(&self.signer.public_key()).is_some())
    }
}

impl Provider for EpochSchemes {
    type Scope = Epoch;
    type Scheme = Scheme;

    fn scoped(&self, scope: Epoch) -> Option<Scoped<Scheme>> {
        self.scheme(scope.get()).map(Scoped::scheme)
    }
}
