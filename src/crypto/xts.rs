//! AES-256-XTS over whole sectors (IEEE 1619-2007, NIST SP 800-38E): the cipher of file contents.
//!
//! This module owns one thing: turning a sector number and a sector's bytes into ciphertext of the
//! same length and back, with ciphertext stealing for sectors whose length is not a multiple of
//! 16. How a file is cut into sectors, and which number each sector gets, is decided by the
//! callers (`crypto::content`).
//!
//! It exists for speed. The `xts-mode` crate computes the same function (the tests below check
//! that, byte for byte) but pushes one 16-byte block at a time through AES, so it never reaches
//! the pipelined multi-block code of the `aes` crate. Here the tweaks of a run of 64 blocks are
//! computed ahead (eight at a time, vectorized), XORed in, the run goes through the backend's
//! parallel path (`encrypt_par_blocks`), and the tweaks are XORed again. On the development
//! machine (Xeon with VAES and AVX-512), a 4096-byte sector: about 7 GB/s, `xts-mode` 1.5 to
//! 1.9 GB/s, `openssl speed -evp aes-256-xts` (OpenSSL 3.0, AES-NI) 5.6 to 6.1 GB/s, and bare
//! `aes` multi-block encryption without any XTS 13.7 GB/s (`benches/xts.rs`).
//!
//! # How the fast path is reached (no `unsafe`, no special build flags)
//! `aes` 0.9 picks its backend at run time with `cpufeatures` (CPUID, cached in an atomic):
//! VAES with AVX-512 (64 blocks per batch), else VAES with AVX2 (30 blocks), else AES-NI
//! (8 blocks), else a constant-time software fixslice. Neither `RUSTFLAGS` nor a `cfg` is needed
//! for VAES; `RUSTFLAGS='--cfg aes_backend="soft"'` would force the software backend.
//! We hand the backend a closure ([`BlockCipherEncClosure`]): the backend calls it from inside its
//! `#[target_feature(enable = "avx512f,vaes")]` (or `"aes"`) function, so the tweak arithmetic
//! and the XORs below are inlined and compiled for the detected instruction set as well, and a
//! sector costs two backend dispatches (one for T_0 under K2, one for the data) instead of one
//! per block.
//!
//! # Memory and key hygiene
//! No heap allocation: per call, about 2 KiB of tweak scratch on the stack. The key schedules
//! are wiped when an [`Xts`] is dropped: that is the `zeroize` feature of `aes`, enabled in
//! `Cargo.toml` and checked at compile time below. The per-call scratch (tweaks, which derive
//! from K2 and the sector number) is deliberately not wiped: the VAES backends of `aes` 0.9 copy
//! the round keys themselves into a broadcast table on the stack for every call and leave it
//! there, so wiping the tweaks would protect nothing, and it cost about a tenth of the speed.

use aes::cipher::{
    array::{Array, ArraySize},
    consts::{U16, U32, U64, U8},
    BlockCipherDecBackend, BlockCipherDecClosure, BlockCipherDecrypt, BlockCipherEncBackend,
    BlockCipherEncClosure, BlockCipherEncrypt, BlockSizeUser, KeyInit,
};
use aes::{Aes256, Aes256Enc, Block};

/// AES-256-XTS keyed with K1 (data) and K2 (tweak); encrypts and decrypts sectors in place.
///
/// Sector `i` uses the tweak `AES-Enc(K2, i as a 128-bit little-endian number)`, which is what
/// IEEE 1619 calls the data unit sequence number, and what `xts_mode::get_tweak_default(i)` gives.
/// The key schedules are zeroized on drop.
#[derive(Clone)]
pub struct Xts {
    /// K1: encrypts and decrypts the data blocks (holds both round-key schedules).
    data: Aes256,
    /// K2: only ever encrypts, to make the initial tweak of a sector.
    tweak: Aes256Enc,
}

// The key schedules must be wiped on drop; this stops compiling if `aes` loses its `zeroize`
// feature.
const _: () = {
    const fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    zeroized_on_drop::<Aes256>();
    zeroized_on_drop::<Aes256Enc>();
};

impl zeroize::ZeroizeOnDrop for Xts {}

impl core::fmt::Debug for Xts {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Xts { .. }")
    }
}

impl Xts {
    /// Builds the cipher from `key` = K1 (data key, first 32 bytes) || K2 (tweak key, last 32).
    pub fn new(key: &[u8; 64]) -> Xts {
        let key: &Array<u8, U64> = key.into();
        let (k1, k2) = key.split_ref::<U32>();
        Xts {
            data: Aes256::new(k1),
            tweak: Aes256Enc::new(k2),
        }
    }

    /// Encrypts one sector in place.
    ///
    /// Precondition: `data.len() >= 16` (XTS cannot encrypt less than one block). A shorter
    /// buffer is a caller bug and panics rather than pass plaintext through.
    /// Any length from 16 up is handled, with ciphertext stealing when it is not a multiple of 16.
    pub fn encrypt_sector(&self, sector: u64, data: &mut [u8]) {
        assert!(data.len() >= 16, "XTS sector shorter than one block");
        let (blocks, tail) = Array::<u8, U16>::slice_as_chunks_mut(data);
        let t0 = self.first_tweak(sector);
        self.data.encrypt_with_backend(Sector { blocks, tail, t0 });
    }

    /// Decrypts one sector in place; the inverse of [`Xts::encrypt_sector`], same precondition.
    pub fn decrypt_sector(&self, sector: u64, data: &mut [u8]) {
        assert!(data.len() >= 16, "XTS sector shorter than one block");
        let (blocks, tail) = Array::<u8, U16>::slice_as_chunks_mut(data);
        let t0 = self.first_tweak(sector);
        self.data.decrypt_with_backend(Sector { blocks, tail, t0 });
    }

    /// T_0 = AES-Enc(K2, sector number as a 128-bit little-endian integer), read back as a
    /// little-endian `u128` (IEEE 1619 numbers the bits of a block that way).
    #[inline]
    fn first_tweak(&self, sector: u64) -> u128 {
        let mut block = Block::from(u128::from(sector).to_le_bytes());
        self.tweak.encrypt_block(&mut block);
        u128::from_le_bytes(block.0)
    }
}

/// Multiplies a tweak by the primitive element x of GF(2^128) modulo x^128 + x^7 + x^2 + x + 1,
/// in the little-endian convention of IEEE 1619 (bit 0 of byte 0 is the constant term).
/// Branch-free: the reduction mask comes from an arithmetic shift of the top bit.
#[inline(always)]
fn mul_x(t: u128) -> u128 {
    (t << 1) ^ ((((t as i128) >> 127) as u128) & 0x87)
}

#[inline(always)]
fn xor_tweak(block: &mut Block, t: u128) {
    block.0 = (u128::from_le_bytes(block.0) ^ t).to_le_bytes();
}

/// The most blocks whose tweaks are computed ahead: a run of up to this many blocks is
/// whitened, ciphered in batches, and unwhitened. 64, 128 and 256 measured the same; 64 is the
/// VAES-512 batch and keeps the scratch small.
const RUN: usize = 64;

/// [`RUN`] in groups of eight tweaks.
const GROUPS: usize = RUN / 8;

/// A tweak as its low and high 64-bit halves (bytes 0..8 and 8..16 read little-endian).
type Halves = [u64; 2];

#[inline(always)]
fn halves(t: u128) -> Halves {
    [t as u64, (t >> 64) as u64]
}

#[inline(always)]
fn from_halves(h: Halves) -> u128 {
    (u128::from(h[1]) << 64) | u128::from(h[0])
}

/// Eight consecutive tweaks `T_j .. T_{j+7}`, split in low and high halves (structure of arrays,
/// so that stepping them is plain lane-wise arithmetic on `[u64; 8]`, which the compiler turns
/// into a dozen AVX-512 instructions for eight tweaks; a serial `mul_x` chain costs several
/// cycles per tweak and was a third of the time).
#[derive(Clone, Copy)]
struct TweakLanes {
    lo: [u64; 8],
    hi: [u64; 8],
}

impl TweakLanes {
    /// `t, t*x, .., t*x^7`, each lane computed on its own (`t * x^k` is a shift by k bits with the
    /// k bits shifted out folded back in), so that this too is lane-wise vector code.
    #[inline(always)]
    fn new(t: u128) -> TweakLanes {
        let [t_lo, t_hi] = halves(t);
        let mut lanes = TweakLanes {
            lo: [0; 8],
            hi: [0; 8],
        };
        for k in 0..8 {
            // `x >> (64 - k)` without the undefined shift by 64 when k = 0.
            let carry_lo = (t_lo >> (63 - k)) >> 1;
            let c = (t_hi >> (63 - k)) >> 1;
            lanes.hi[k] = (t_hi << k) | carry_lo;
            lanes.lo[k] = (t_lo << k) ^ c ^ (c << 1) ^ (c << 2) ^ (c << 7);
        }
        lanes
    }
}

/// Tweaks of a run of blocks, as 64-bit words in block order: block `j` gets words `2j` (low
/// half) and `2j + 1` (high half).
type TweakWords = [[u64; 16]; GROUPS];

/// Writes the tweaks of `groups` groups of eight blocks into `tw`, starting with `lanes`.
///
/// Two passes on purpose: the first only steps the lanes (held in locals and written to arrays of
/// their own, it compiles to a dozen lane-wise vector instructions per eight tweaks), the second
/// interleaves low and high halves into block order (two permutes per eight tweaks). Written as
/// one loop, into a shared buffer, or with the lanes behind a reference, the same arithmetic
/// compiled to per-step shuffles, general-purpose registers or gathers, two to three times slower.
#[inline(always)]
fn fill_tweaks(lanes: TweakLanes, tw: &mut TweakWords, groups: usize) {
    let mut lo = [[0u64; 8]; GROUPS];
    let mut hi = [[0u64; 8]; GROUPS];
    let groups = groups.min(GROUPS);
    let TweakLanes {
        lo: mut lane_lo,
        hi: mut lane_hi,
    } = lanes;
    for (l, h) in lo[..groups].iter_mut().zip(hi[..groups].iter_mut()) {
        *l = lane_lo;
        *h = lane_hi;
        (lane_lo, lane_hi) = mul_x8(&lane_lo, &lane_hi);
    }
    for ((w, l), h) in tw[..groups]
        .iter_mut()
        .zip(&lo[..groups])
        .zip(&hi[..groups])
    {
        for k in 0..8 {
            w[2 * k] = l[k];
            w[2 * k + 1] = h[k];
        }
    }
}

/// Multiplies eight tweaks, split in low and high halves, by x^8: a shift by one byte, and the
/// byte shifted out folded back in as `c * (x^7 + x^2 + x + 1)` (carry-less; `c < 2^8` so the
/// product is `< 2^15`).
#[inline(always)]
fn mul_x8(lo: &[u64; 8], hi: &[u64; 8]) -> ([u64; 8], [u64; 8]) {
    let mut new_lo = [0u64; 8];
    let mut new_hi = [0u64; 8];
    for k in 0..8 {
        let c = hi[k] >> 56;
        new_hi[k] = (hi[k] << 8) | (lo[k] >> 56);
        new_lo[k] = (lo[k] << 8) ^ c ^ (c << 1) ^ (c << 2) ^ (c << 7);
    }
    (new_lo, new_hi)
}

/// XORs tweak words into `blocks` (two words per block; written on 64-bit words so that it
/// vectorizes).
#[inline(always)]
fn xor_tweaks(blocks: &mut [Block], words: &[u64]) {
    let (data, _) = Array::<u8, U8>::slice_as_chunks_mut(Array::slice_as_flattened_mut(blocks));
    for (d, &w) in data.iter_mut().zip(words.iter()) {
        d.0 = (u64::from_le_bytes(d.0) ^ w).to_le_bytes();
    }
}

/// The tweaks around the end of a sector's full blocks, for ciphertext stealing.
struct EndTweaks {
    /// T_{n-1}, the tweak of the last full block.
    last: u128,
    /// T_n, the tweak after it (used by the stolen block).
    next: u128,
}

/// Runs XEX (`C_j = E(P_j ^ T_j) ^ T_j`) over all of `blocks` with tweaks starting at `t0`,
/// `P` blocks at a time through `par`, a final partial batch through `par` on a padded copy or
/// through `single`.
///
/// With `swap_last`, the last block uses T_n instead of T_{n-1}: that is what XTS decryption
/// with ciphertext stealing does to the last full block.
#[inline(always)]
fn xex_blocks<P: ArraySize>(
    blocks: &mut [Block],
    t0: u128,
    swap_last: bool,
    mut par: impl FnMut(&mut Array<Block, P>),
    mut single: impl FnMut(&mut Block),
) -> EndTweaks {
    let p = P::USIZE;
    // Runs are whole batches, except the last one. A backend batch larger than a run (none in
    // `aes` 0.9.4, whose largest is 64) would still be correct, one block at a time.
    let batched = p <= RUN;
    let run = if batched { RUN / p * p } else { RUN };
    let n = blocks.len();
    let mut tw: TweakWords = [[0; 16]; GROUPS];
    let mut t = t0;
    let mut end = EndTweaks { last: 0, next: 0 };

    for (i, run_blocks) in blocks.chunks_mut(run).enumerate() {
        let m = run_blocks.len();
        fill_tweaks(TweakLanes::new(t), &mut tw, m.div_ceil(8));
        let words = &mut tw.as_flattened_mut()[..2 * m];
        let last = from_halves([words[2 * m - 2], words[2 * m - 1]]);
        let next = mul_x(last);
        t = next;
        if i * run + m == n {
            end = EndTweaks { last, next };
            if swap_last {
                [words[2 * m - 2], words[2 * m - 1]] = halves(next);
            }
        }
        xor_tweaks(run_blocks, words);

        let (batches, rest) = Array::<Block, P>::slice_as_chunks_mut(run_blocks);
        batches.iter_mut().for_each(&mut par);
        // A partial batch of r blocks: a zero-padded batch costs P blocks of AES, but pipelined;
        // one block at a time costs r blocks at the latency of a single AES. Past half a batch
        // the padded batch wins.
        let r = rest.len();
        if batched && 2 * r >= p {
            let mut buf = Array::<Block, P>::default();
            buf[..r].copy_from_slice(rest);
            par(&mut buf);
            rest.copy_from_slice(&buf[..r]);
        } else {
            rest.iter_mut().for_each(&mut single);
        }

        xor_tweaks(run_blocks, words);
    }

    end
}

/// One XEX block with tweak `t` through `op`.
#[inline(always)]
fn xex_one(block: &mut Block, t: u128, op: impl FnOnce(&mut Block)) {
    xor_tweak(block, t);
    op(block);
    xor_tweak(block, t);
}

/// XTS encryption of a sector made of `blocks` (at least one) and `tail` (0..=15 bytes), with
/// `par` encrypting `P` blocks at once and `single` one block, in place.
#[inline(always)]
fn encrypt_with<P: ArraySize>(
    blocks: &mut [Block],
    tail: &mut [u8],
    t0: u128,
    par: impl FnMut(&mut Array<Block, P>),
    mut single: impl FnMut(&mut Block),
) {
    let end = xex_blocks::<P>(blocks, t0, false, par, &mut single);
    // Ciphertext stealing (IEEE 1619 5.3.2): the last full block now holds CC = XEX(P_{n-1},
    // T_{n-1}). The output tail is the head of CC; the head of CC is replaced by the plaintext
    // tail, which makes PP, and PP is encrypted with T_n in the last full block's place.
    if let (false, Some(last)) = (tail.is_empty(), blocks.last_mut()) {
        last[..tail.len()].swap_with_slice(tail);
        xex_one(last, end.next, single);
    }
}

/// XTS decryption, the inverse of [`encrypt_with`]; `par` and `single` decrypt.
#[inline(always)]
fn decrypt_with<P: ArraySize>(
    blocks: &mut [Block],
    tail: &mut [u8],
    t0: u128,
    par: impl FnMut(&mut Array<Block, P>),
    mut single: impl FnMut(&mut Block),
) {
    let stealing = !tail.is_empty();
    let end = xex_blocks::<P>(blocks, t0, stealing, par, &mut single);
    // Ciphertext stealing (IEEE 1619 5.4.2): the last full block was decrypted with T_n and now
    // holds PP. The plaintext tail is the head of PP; the ciphertext tail takes its place, which
    // makes CC, and CC is decrypted with T_{n-1} into the last full plaintext block.
    if let (true, Some(last)) = (stealing, blocks.last_mut()) {
        last[..tail.len()].swap_with_slice(tail);
        xex_one(last, end.last, single);
    }
}

/// One sector, handed to the `aes` backend to encrypt or decrypt, which calls it with itself.
struct Sector<'a> {
    /// The full 16-byte blocks of the sector (at least one).
    blocks: &'a mut [Block],
    /// The 0..=15 bytes after them.
    tail: &'a mut [u8],
    /// T_0.
    t0: u128,
}

impl BlockSizeUser for Sector<'_> {
    type BlockSize = U16;
}

impl BlockCipherEncClosure for Sector<'_> {
    #[inline(always)]
    fn call<B: BlockCipherEncBackend<BlockSize = U16>>(self, backend: &B) {
        encrypt_with::<B::ParBlocksSize>(
            self.blocks,
            self.tail,
            self.t0,
            |chunk| backend.encrypt_par_blocks_inplace(chunk),
            |block| backend.encrypt_block_inplace(block),
        );
    }
}

impl BlockCipherDecClosure for Sector<'_> {
    #[inline(always)]
    fn call<B: BlockCipherDecBackend<BlockSize = U16>>(self, backend: &B) {
        decrypt_with::<B::ParBlocksSize>(
            self.blocks,
            self.tail,
            self.t0,
            |chunk| backend.decrypt_par_blocks_inplace(chunk),
            |block| backend.decrypt_block_inplace(block),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::consts::{U1, U128, U30};
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};
    use xts_mode::{get_tweak_default, Xts128};

    fn hex(s: &str) -> Vec<u8> {
        assert_eq!(s.len() & 1, 0, "odd hex length");
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
            .collect()
    }

    /// The key of IEEE 1619-2007 Vectors 10-14: Key1 = e's digits, Key2 = pi's digits.
    const IEEE_KEY: &str = "\
        2718281828459045235360287471352662497757247093699959574966967627\
        3141592653589793238462643383279502884197169399375105820974944592";

    fn ieee_key() -> [u8; 64] {
        hex(IEEE_KEY).try_into().expect("64 bytes")
    }

    /// `len` bytes of 00 01 02 .. ff 00 01 ..: the plaintext of Vectors 10-14 (512 bytes).
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| i as u8).collect()
    }

    /// IEEE 1619-2007 Annex B, Vector 10: XTS-AES-256, data unit sequence number 0xff.
    const CT_10: &str = "\
        1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b\
        5d31e276f8fe4a8d66b317f9ac683f44680a86ac35adfc3345befecb4bb188fd\
        5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d848b21d4a741b0\
        c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca\
        2a3e7a7d7df7b10355165c8b9a6d0a7de8b062c4500dc4cd120c0f7418dae3d0\
        b5781c34803fa75421c790dfe1de1834f280d7667b327f6c8cd7557e12ac3a0f\
        93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec\
        583e9645e07b8d9670655ba5bbcfecc6dc3966380ad8fecb17b6ba02469a020a\
        84e18e8f84252070c13e9f1f289be54fbc481457778f616015e1327a02b140f1\
        505eb309326d68378f8374595c849d84f4c333ec4423885143cb47bd71c5edae\
        9be69a2ffeceb1bec9de244fbe15992b11b77c040f12bd8f6a975a44a0f90c29\
        a9abc3d4d893927284c58754cce294529f8614dcd2aba991925fedc4ae74ffac\
        6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f\
        645e8b7e9bfdef33943054ff84011493c27b3429eaedb4ed5376441a77ed4385\
        1ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066193c4caa\
        773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151";

    /// IEEE 1619-2007 Annex B, Vector 11: XTS-AES-256, data unit sequence number 0xffff.
    const CT_11: &str = "\
        77a31251618a15e6b92d1d66dffe7b50b50bad552305ba0217a610688eff7e11\
        e1d0225438e093242d6db274fde801d4cae06f2092c728b2478559df58e837c2\
        469ee4a4fa794e4bbc7f39bc026e3cb72c33b0888f25b4acf56a2a9804f1ce6d\
        3d6e1dc6ca181d4b546179d55544aa7760c40d06741539c7e3cd9d2f6650b201\
        3fd0eeb8c2b8e3d8d240ccae2d4c98320a7442e1c8d75a42d6e6cfa4c2eca179\
        8d158c7aecdf82490f24bb9b38e108bcda12c3faf9a21141c3613b58367f922a\
        aa26cd22f23d708dae699ad7cb40a8ad0b6e2784973dcb605684c08b8d6998c6\
        9aac049921871ebb65301a4619ca80ecb485a31d744223ce8ddc2394828d6a80\
        470c092f5ba413c3378fa6054255c6f9df4495862bbb3287681f931b687c888a\
        bf844dfc8fc28331e579928cd12bd2390ae123cf03818d14dedde5c0c24c8ab0\
        18bfca75ca096f2d531f3d1619e785f1ada437cab92e980558b3dce1474afb75\
        bfedbf8ff54cb2618e0244c9ac0d3c66fb51598cd2db11f9be39791abe447c63\
        094f7c453b7ff87cb5bb36b7c79efb0872d17058b83b15ab0866ad8a58656c5a\
        7e20dbdf308b2461d97c0ec0024a2715055249cf3b478ddd4740de654f75ca68\
        6e0d7345c69ed50cdc2a8b332b1f8824108ac937eb050585608ee734097fc090\
        54fbff89eeaeea791f4a7ab1f9868294a4f9e27b42af8100cb9d59cef9645803";

    /// IEEE 1619-2007 Annex B, Vector 12: XTS-AES-256, data unit sequence number 0xff_ffff.
    const CT_12: &str = "\
        e387aaa58ba483afa7e8eb469778317ecf4cf573aa9d4eac23f2cdf914e4e200\
        a8b490e42ee646802dc6ee2b471b278195d60918ececb44bf79966f83faba049\
        9298ebc699c0c8634715a320bb4f075d622e74c8c932004f25b41e361025b5a8\
        7815391f6108fc4afa6a05d9303c6ba68a128a55705d415985832fdeaae6c8e1\
        9110e84d1b1f199a2692119edc96132658f09da7c623efcec712537a3d94c0bf\
        5d7e352ec94ae5797fdb377dc1551150721adf15bd26a8efc2fcaad56881fa9e\
        62462c28f30ae1ceaca93c345cf243b73f542e2074a705bd2643bb9f7cc79bb6\
        e7091ea6e232df0f9ad0d6cf502327876d82207abf2115cdacf6d5a48f6c1879\
        a65b115f0f8b3cb3c59d15dd8c769bc014795a1837f3901b5845eb491adfefe0\
        97b1fa30a12fc1f65ba22905031539971a10f2f36c321bb51331cdefb39e3964\
        c7ef079994f5b69b2edd83a71ef549971ee93f44eac3938fcdd61d01fa71799d\
        a3a8091c4c48aa9ed263ff0749df95d44fef6a0bb578ec69456aa5408ae32c7a\
        f08ad7ba8921287e3bbee31b767be06a0e705c864a769137df28292283ea81a2\
        480241b44d9921cdbec1bc28dc1fda114bd8e5217ac9d8ebafa720e9da4f9ace\
        231cc949e5b96fe76ffc21063fddc83a6b8679c00d35e09576a875305bed5f36\
        ed242c8900dd1fa965bc950dfce09b132263a1eef52dd6888c309f5a7d712826";

    /// IEEE 1619-2007 Annex B, Vector 13: XTS-AES-256, data unit sequence number 0xffff_ffff.
    const CT_13: &str = "\
        bf53d2dade78e822a4d949a9bc6766b01b06a8ef70d26748c6a7fc36d80ae4c5\
        520f7c4ab0ac8544424fa405162fef5a6b7f229498063618d39f0003cb5fb8d1\
        c86b643497da1ff945c8d3bedeca4f479702a7a735f043ddb1d6aaade3c4a0ac\
        7ca7f3fa5279bef56f82cd7a2f38672e824814e10700300a055e1630b8f1cb0e\
        919f5e942010a416e2bf48cb46993d3cb6a51c19bacf864785a00bc2ecff15d3\
        50875b246ed53e68be6f55bd7e05cfc2b2ed6432198a6444b6d8c247fab941f5\
        69768b5c429366f1d3f00f0345b96123d56204c01c63b22ce78baf116e525ed9\
        0fdea39fa469494d3866c31e05f295ff21fea8d4e6e13d67e47ce722e9698a1c\
        1048d68ebcde76b86fcf976eab8aa9790268b7068e017a8b9b749409514f1053\
        027fd16c3786ea1bac5f15cb79711ee2abe82f5cf8b13ae73030ef5b9e4457e7\
        5d1304f988d62dd6fc4b94ed38ba831da4b7634971b6cd8ec325d9c61c00f1df\
        73627ed3745a5e8489f3a95c69639c32cd6e1d537a85f75cc844726e8a72fc00\
        77ad22000f1d5078f6b866318c668f1ad03d5a5fced5219f2eabbd0aa5c0f460\
        d183f04404a0d6f469558e81fab24a167905ab4c7878502ad3e38fdbe62a4155\
        6cec37325759533ce8f25f367c87bb5578d667ae93f9e2fd99bcbc5f2fbba88c\
        f6516139420fcff3b7361d86322c4bd84c82f335abb152c4a93411373aaa8220";

    /// IEEE 1619-2007 Annex B, Vector 14: XTS-AES-256, data unit sequence number 0xff_ffff_ffff.
    const CT_14: &str = "\
        64497e5a831e4a932c09be3e5393376daa599548b816031d224bbf50a818ed23\
        50eae7e96087c8a0db51ad290bd00c1ac1620857635bf246c176ab463be30b80\
        8da548081ac847b158e1264be25bb0910bbc92647108089415d45fab1b3d2604\
        e8a8eff1ae4020cfa39936b66827b23f371b92200be90251e6d73c5f86de5fd4\
        a950781933d79a28272b782a2ec313efdfcc0628f43d744c2dc2ff3dcb66999b\
        50c7ca895b0c64791eeaa5f29499fb1c026f84ce5b5c72ba1083cddb5ce45434\
        631665c333b60b11593fb253c5179a2c8db813782a004856a1653011e93fb6d8\
        76c18366dd8683f53412c0c180f9c848592d593f8609ca736317d356e13e2bff\
        3a9f59cd9aeb19cd482593d8c46128bb32423b37a9adfb482b99453fbe25a41b\
        f6feb4aa0bef5ed24bf73c762978025482c13115e4015aac992e5613a3b5c2f6\
        85b84795cb6e9b2656d8c88157e52c42f978d8634c43d06fea928f2822e465aa\
        6576e9bf419384506cc3ce3c54ac1a6f67dc66f3b30191e698380bc999b05abc\
        e19dc0c6dcc2dd001ec535ba18deb2df1a101023108318c75dc98611a09dc48a\
        0acdec676fabdf222f07e026f059b672b56e5cbc8e1d21bbd867dd9272120546\
        81d70ea737134cdfce93b6f82ae22423274e58a0821cc5502e2d0ab4585e94de\
        6975be5e0b4efce51cd3e70c25a1fbbbd609d273ad5b0d59631c531f6a0a57b9";

    #[test]
    fn ieee1619_vectors_10_to_14() {
        let xts = Xts::new(&ieee_key());
        let cases: [(u64, &str); 5] = [
            (0xff, CT_10),
            (0xffff, CT_11),
            (0xff_ffff, CT_12),
            (0xffff_ffff, CT_13),
            (0xff_ffff_ffff, CT_14),
        ];
        for (sector, ct) in cases {
            let ct = hex(ct);
            let mut buf = pattern(512);
            xts.encrypt_sector(sector, &mut buf);
            assert_eq!(buf, ct, "encrypt, sector {sector:#x}");
            xts.decrypt_sector(sector, &mut buf);
            assert_eq!(buf, pattern(512), "decrypt, sector {sector:#x}");
        }
    }

    /// IEEE 1619's ciphertext-stealing vectors (15-18) are XTS-AES-128 only. These AES-256 ones
    /// were made with OpenSSL 3 (through Python `cryptography`'s `modes.XTS`, whose tweak is the
    /// 16-byte little-endian sector number), after checking that it reproduces Vectors 10-14.
    #[test]
    fn ciphertext_stealing_known_answers() {
        let xts = Xts::new(&ieee_key());
        for (len, ct) in [
            (17, "990b3d5708499ecacac51584606f5d761c"),
            (
                31,
                "b7a469d9a0a8237d178ad4323b2746321c3b3a102f770386e4836c99e370cf",
            ),
        ] {
            let mut buf = pattern(len);
            xts.encrypt_sector(0xff, &mut buf);
            assert_eq!(buf, hex(ct), "encrypt, {len} bytes");
            xts.decrypt_sector(0xff, &mut buf);
            assert_eq!(buf, pattern(len), "decrypt, {len} bytes");
        }
        // Longer sectors, compared by SHA-256 of the ciphertext: several batches, a stolen block
        // right after a full batch (4097, 4111) and after a partial one (527).
        for (len, digest) in [
            (
                527,
                "4ca384420a4b2a1b81cb25451842fe8cbab32abf6e1872d8562ef4150070c2b0",
            ),
            (
                4096,
                "b016783c474eda27faaa95143e9d8dbd7c00856e60bd624e5ede3b6c49d374ca",
            ),
            (
                4097,
                "668d10a6a04e16f5e8bbeccd1af81900868d7fa79b8530f83c0b2be35e975242",
            ),
            (
                4111,
                "d90b8765da4342be45a900c1dfe090c88c874e21ff6cc4edd38bbb4406b7d7e9",
            ),
        ] {
            let mut buf = pattern(len);
            xts.encrypt_sector(0x0123_4567_89ab_cdef, &mut buf);
            assert_eq!(Sha256::digest(&buf).as_slice(), hex(digest), "{len} bytes");
            xts.decrypt_sector(0x0123_4567_89ab_cdef, &mut buf);
            assert_eq!(buf, pattern(len), "decrypt, {len} bytes");
        }
    }

    #[test]
    fn mul_x_reduces_with_0x87() {
        assert_eq!(mul_x(1), 2);
        assert_eq!(mul_x(1 << 127), 0x87);
        assert_eq!(mul_x((1 << 127) | 1), 0x85);
        assert_eq!(mul_x(u128::MAX), (u128::MAX << 1) ^ 0x87);
    }

    fn reference(key: &[u8; 64]) -> Xts128<Aes256> {
        let key: &Array<u8, U64> = key.into();
        let (k1, k2) = key.split_ref::<U32>();
        Xts128::new(Aes256::new(k1), Aes256::new(k2))
    }

    fn check_against_reference(xts: &Xts, reference: &Xts128<Aes256>, sector: u64, plain: &[u8]) {
        let mut ours = plain.to_vec();
        xts.encrypt_sector(sector, &mut ours);
        let mut theirs = plain.to_vec();
        reference.encrypt_sector(&mut theirs, get_tweak_default(u128::from(sector)));
        assert_eq!(ours, theirs, "ciphertext, {} bytes", plain.len());
        xts.decrypt_sector(sector, &mut ours);
        assert_eq!(ours, plain, "round trip, {} bytes", plain.len());
    }

    /// Every length the filesystem uses, against `xts-mode`, with the batch size of this
    /// machine's backend (64 blocks with VAES-512: partial batches both padded and one by one).
    #[test]
    fn every_sector_length_matches_xts_mode() {
        let key: [u8; 64] = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0xa5);
        let xts = Xts::new(&key);
        let reference = reference(&key);
        let plain: Vec<u8> = (0..4111u32).map(|i| (i * 7 + i / 251) as u8).collect();
        for len in 16..=4111 {
            check_against_reference(&xts, &reference, len as u64 * 3 + 1, &plain[..len]);
        }
    }

    /// The batching logic with the batch sizes of the other backends (AES-NI 8, VAES-256 30,
    /// and 1) and one larger than a run (128, the one-block-at-a-time fallback), with `aes`'s
    /// own multi-block calls standing in for the backend.
    #[test]
    fn other_batch_sizes_match_xts_mode() {
        fn run<P: ArraySize>(key: &[u8; 64], sector: u64, plain: &[u8]) {
            let k: &Array<u8, U64> = key.into();
            let (k1, k2) = k.split_ref::<U32>();
            let (data, tweak) = (Aes256::new(k1), Aes256Enc::new(k2));
            let mut t = Block::from(u128::from(sector).to_le_bytes());
            tweak.encrypt_block(&mut t);
            let t0 = u128::from_le_bytes(t.0);

            let mut buf = plain.to_vec();
            let (blocks, tail) = Array::<u8, U16>::slice_as_chunks_mut(&mut buf);
            encrypt_with::<P>(
                blocks,
                tail,
                t0,
                |c| data.encrypt_blocks(c.as_mut_slice()),
                |b| data.encrypt_block(b),
            );
            let mut expected = plain.to_vec();
            reference(key).encrypt_sector(&mut expected, get_tweak_default(u128::from(sector)));
            assert_eq!(buf, expected, "P = {}, {} bytes", P::USIZE, plain.len());

            let (blocks, tail) = Array::<u8, U16>::slice_as_chunks_mut(&mut buf);
            decrypt_with::<P>(
                blocks,
                tail,
                t0,
                |c| data.decrypt_blocks(c.as_mut_slice()),
                |b| data.decrypt_block(b),
            );
            assert_eq!(
                buf,
                plain,
                "P = {}, {} bytes, round trip",
                P::USIZE,
                plain.len()
            );
        }
        let key: [u8; 64] = std::array::from_fn(|i| 255 - i as u8);
        let plain = pattern(4111);
        for len in (16..=4111)
            .step_by(7)
            .chain([4096, 4097, 4111, 16 * 240 + 3])
        {
            run::<U1>(&key, 9, &plain[..len]);
            run::<U8>(&key, 9, &plain[..len]);
            run::<U30>(&key, 9, &plain[..len]);
            run::<U128>(&key, 9, &plain[..len]);
        }
    }

    #[test]
    fn sectors_and_keys_give_different_ciphertexts() {
        let xts = Xts::new(&ieee_key());
        let mut a = pattern(4096);
        let mut b = pattern(4096);
        xts.encrypt_sector(0, &mut a);
        xts.encrypt_sector(1, &mut b);
        assert_ne!(a, b);
        let mut c = pattern(4096);
        let mut other_key = ieee_key();
        other_key[63] ^= 1; // only the tweak key differs
        Xts::new(&other_key).encrypt_sector(0, &mut c);
        assert_ne!(a, c);
    }

    #[test]
    #[should_panic(expected = "shorter than one block")]
    fn short_sector_is_a_caller_bug() {
        Xts::new(&ieee_key()).encrypt_sector(0, &mut [0u8; 15]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Random key, sector number and length: same ciphertext as `xts-mode`, and decryption
        /// gives the plaintext back.
        #[test]
        fn matches_xts_mode(
            key in proptest::array::uniform::<_, 64>(any::<u8>()),
            sector in any::<u64>(),
            plain in proptest::collection::vec(any::<u8>(), 16..=4111),
        ) {
            check_against_reference(&Xts::new(&key), &reference(&key), sector, &plain);
        }
    }
}
