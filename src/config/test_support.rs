//! What the unit tests of both config formats share.

use super::KdfParams;
use crate::crypto::keys::MasterKey;

/// The cheapest parameters load accepts: tests stay fast.
pub const CHEAP: KdfParams = KdfParams {
    memory_kib: 8,
    iterations: 1,
    parallelism: 1,
};

/// A fixed master key.
pub fn master() -> MasterKey {
    MasterKey::from_bytes(std::array::from_fn(|i| i as u8))
}
