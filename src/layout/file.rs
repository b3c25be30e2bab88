//! Reading and writing the contents of one backing file ("Contents" in format.md): header
//! management, sector read-modify-write, holes, truncation, and the fresh-file-ID rules.
//!
//! Callers serialize access per file: [`FileContent::read`] may run concurrently with other
//! reads, while `write` and `truncate` need exclusive access (`&mut self`).

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::atomic::{AtomicI64, Ordering};

use crate::crypto::content::{
    backing_size, plaintext_size, sector_at, sectors_overlapping, FileCipher, FileHeader, Sector,
    BLOCK_SIZE, HEADER_LEN, MIN_XTS_SECTOR,
};
use crate::crypto::keys::ContentKey;
use crate::error::{Error, Result};

/// Positional I/O on a backing file; `File` in the filesystem, a byte vector in tests.
pub trait Backing {
    /// Reads up to `buf.len()` bytes at `offset`; fewer only at end of file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    fn backing_len(&self) -> io::Result<u64>;
    /// The length and, where the backing can tell, when the file last changed (its ctime):
    /// one `fstat` for a file.
    fn len_and_change(&self) -> io::Result<(u64, Option<ChangeTime>)> {
        Ok((self.backing_len()?, None))
    }
}

/// A backing file's status change time (`st_ctime`), seconds and nanoseconds: any write,
/// truncate or rename of it, by veilfs or by anyone else, changes it.
pub type ChangeTime = (i64, i64);

impl Backing for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match FileExt::read_at(self, &mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(self, buf, offset)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }
    fn backing_len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn len_and_change(&self) -> io::Result<(u64, Option<ChangeTime>)> {
        let meta = self.metadata()?;
        Ok((meta.len(), Some((meta.ctime(), meta.ctime_nsec()))))
    }
}

/// A backing file held in memory: for tests, and tools that work on ciphertext in memory.
#[derive(Default)]
pub struct MemBacking(pub RefCell<Vec<u8>>);

impl Backing for MemBacking {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let data = self.0.borrow();
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut data = self.0.borrow_mut();
        let end = offset as usize + buf.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[offset as usize..end].copy_from_slice(buf);
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.borrow_mut().resize(len as usize, 0);
        Ok(())
    }
    fn backing_len(&self) -> io::Result<u64> {
        Ok(self.0.borrow().len() as u64)
    }
}

/// The decrypting view of one backing file: its header's cipher, loaded once per open file.
///
/// A sync tool may rewrite the backing file in place while it is open (another device's
/// version, under another file ID): decrypting its bytes with the cipher loaded before would
/// serve garbage, and writing with it would corrupt the new file. So every read and write
/// compares the backing file's change time with the one at which the header was last seen,
/// and when it differs reads the header again ([`Error::HeaderChanged`] for a read, which the
/// caller answers by loading it again; a write reloads it itself). Steady reads cost nothing
/// more: the `fstat` that gives the size gives the change time.
#[derive(Debug, Default)]
pub struct FileContent {
    cipher: Option<FileCipher>,
    /// The backing file's change time when its header was last seen to be `cipher`'s (0 until
    /// then, so the first read or write checks it); atomics, as reads share the content.
    seen_secs: AtomicI64,
    seen_nanos: AtomicI64,
}

impl FileContent {
    /// Reads the header of `backing`, if it has one (an empty file has none).
    pub fn load(backing: &impl Backing, key: &ContentKey) -> Result<Self> {
        let mut header = [0; HEADER_LEN as usize];
        let n = backing.read_at(&mut header, 0)?;
        let cipher = match n {
            0 => None,
            _ => Some(FileCipher::new(key, FileHeader::parse(&header[..n])?)),
        };
        Ok(Self::with_cipher(cipher))
    }

    fn with_cipher(cipher: Option<FileCipher>) -> Self {
        Self {
            cipher,
            ..Self::default()
        }
    }

    /// The plaintext size, after checking that the header is still the one loaded when the
    /// backing file changed since it was last seen ([`Error::HeaderChanged`] if not).
    fn checked_size(&self, backing: &impl Backing) -> Result<u64> {
        let (len, changed) = backing.len_and_change()?;
        if let Some((secs, nanos)) = changed {
            let seen = (
                self.seen_secs.load(Ordering::Relaxed),
                self.seen_nanos.load(Ordering::Relaxed),
            );
            if seen != (secs, nanos) {
                let mut header = [0; HEADER_LEN as usize];
                let n = backing.read_at(&mut header, 0)?;
                let ours = self.cipher.as_ref().map(|c| c.header().to_bytes());
                let same = match &ours {
                    Some(ours) => header[..n] == ours[..],
                    None => n == 0,
                };
                if !same {
                    return Err(Error::HeaderChanged);
                }
                self.seen_secs.store(secs, Ordering::Relaxed);
                self.seen_nanos.store(nanos, Ordering::Relaxed);
            }
        }
        plaintext_size(len)
    }

    /// For a writer: loads the header again if another writer replaced it since it was seen.
    fn reload_if_replaced(&mut self, key: &ContentKey, backing: &impl Backing) -> Result<u64> {
        match self.checked_size(backing) {
            Err(Error::HeaderChanged) => {
                *self = Self::load(backing, key)?;
                self.checked_size(backing)
            }
            result => result,
        }
    }

    /// The header in use, `None` while the file is empty.
    pub fn header(&self) -> Option<&FileHeader> {
        self.cipher.as_ref().map(FileCipher::header)
    }

    /// Plaintext size, from the backing size alone.
    pub fn size(backing: &impl Backing) -> Result<u64> {
        plaintext_size(backing.backing_len()?)
    }

    /// Reads up to `len` plaintext bytes at `offset`; shorter only at end of file.
    /// [`Error::HeaderChanged`] when the file was rewritten under another header since it was
    /// loaded: load it again and retry.
    pub fn read(&self, backing: &impl Backing, offset: u64, len: usize) -> Result<Vec<u8>> {
        let size = self.checked_size(backing)?;
        let end = size.min(offset.saturating_add(len as u64));
        if offset >= end {
            return Ok(Vec::new());
        }
        self.read_range(backing, size, offset, end)
    }

    /// Plaintext of `[from, to)` of a file of `size` bytes, `to <= size`.
    fn read_range(&self, backing: &impl Backing, size: u64, from: u64, to: u64) -> Result<Vec<u8>> {
        let cipher = self.cipher.as_ref().ok_or(Error::HeaderTruncated(0))?;
        let first = sector_at(from, size).expect("from < to <= size");
        let last = sector_at(to - 1, size).expect("to - 1 < size");
        let mut buf = vec![0; (last.end() - first.start) as usize];
        let n = backing.read_at(&mut buf, HEADER_LEN + first.start)?;
        // A file cut short underneath us (a sync tool): missing bytes read as a hole.
        buf[n..].fill(0);
        for sector in sectors_overlapping(first.start, last.end(), size) {
            cipher.decrypt_sector(sector, span_mut(&mut buf, first.start, sector));
        }
        let skip = (from - first.start) as usize;
        buf.copy_within(skip..skip + (to - from) as usize, 0);
        buf.truncate((to - from) as usize);
        Ok(buf)
    }

    /// Writes `data` at `offset`, extending the file (with a hole) if `offset` is past its end.
    pub fn write(
        &mut self,
        key: &ContentKey,
        backing: &impl Backing,
        offset: u64,
        data: &[u8],
    ) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let old_size = self.reload_if_replaced(key, backing)?;
        let end = offset + data.len() as u64;
        let new_size = old_size.max(end);
        if new_size < MIN_XTS_SECTOR {
            let mut plain = self.read_prefix(backing, old_size, new_size)?;
            plain[offset as usize..end as usize].copy_from_slice(data);
            return self.rewrite_short(key, backing, &plain);
        }
        if old_size == 0 {
            self.start_new_file(key, backing)?;
        } else {
            self.reload_if_unloaded(key, backing)?;
        }
        // Sectors whose ciphertext changes: those holding new data, and, when the file grows,
        // those holding the old final sector, which may have been short or stolen into.
        let mut ranges = vec![(offset, end)];
        if let Some(tail) = changed_tail(old_size, new_size) {
            ranges.push(tail);
        }
        let mut updates = Vec::new();
        for (from, to) in merge(ranges) {
            let run_start = sector_at(from, new_size).expect("from < new_size").start;
            let run_end = sector_at(to - 1, new_size).expect("to <= new_size").end();
            let mut buf = vec![0; (run_end - run_start) as usize];
            for sector in sectors_overlapping(run_start, run_end, new_size) {
                let covered = offset <= sector.start && sector.end() <= end;
                if !covered && sector.start < old_size {
                    let old_to = sector.end().min(old_size);
                    let old = self.read_range(backing, old_size, sector.start, old_to)?;
                    let at = (sector.start - run_start) as usize;
                    buf[at..at + old.len()].copy_from_slice(&old);
                }
            }
            let lo = offset.max(run_start);
            let hi = end.min(run_end);
            if lo < hi {
                buf[(lo - run_start) as usize..(hi - run_start) as usize]
                    .copy_from_slice(&data[(lo - offset) as usize..(hi - offset) as usize]);
            }
            updates.push((run_start, run_end, buf));
        }
        let cipher = self.cipher.as_ref().expect("set above");
        for (run_start, run_end, mut buf) in updates {
            for sector in sectors_overlapping(run_start, run_end, new_size) {
                cipher.encrypt_sector(sector, span_mut(&mut buf, run_start, sector));
            }
            backing.write_all_at(&buf, HEADER_LEN + run_start)?;
        }
        Ok(())
    }

    /// Sets the plaintext size; growing leaves a hole that reads as zeros.
    pub fn truncate(
        &mut self,
        key: &ContentKey,
        backing: &impl Backing,
        new_size: u64,
    ) -> Result<()> {
        let old_size = self.reload_if_replaced(key, backing)?;
        if new_size == old_size {
            return Ok(());
        }
        if new_size == 0 {
            // The next write starts a new file ID, so a rewrite-from-scratch hides what changed.
            backing.set_len(0)?;
            *self = Self::with_cipher(None);
            return Ok(());
        }
        if new_size < MIN_XTS_SECTOR {
            let plain = self.read_prefix(backing, old_size, new_size)?;
            return self.rewrite_short(key, backing, &plain);
        }
        if old_size == 0 {
            self.start_new_file(key, backing)?;
            backing.set_len(backing_size(new_size))?;
            return Ok(());
        }
        self.reload_if_unloaded(key, backing)?;
        // The one sector whose layout may change: the new last one when shrinking, the old last
        // one when growing.
        let (from, to) = if new_size < old_size {
            let last = sector_at(new_size - 1, new_size).expect("new_size > 0");
            if sector_at(last.start, old_size) == Some(last) {
                backing.set_len(backing_size(new_size))?;
                return Ok(());
            }
            (last.start, new_size)
        } else {
            match changed_tail(old_size, new_size) {
                Some(range) => range,
                None => {
                    backing.set_len(backing_size(new_size))?;
                    return Ok(());
                }
            }
        };
        let run_start = sector_at(from, new_size).expect("from < new_size").start;
        let run_end = sector_at(to - 1, new_size).expect("to <= new_size").end();
        let mut buf = self.read_range(backing, old_size, run_start, run_end.min(old_size))?;
        buf.resize((run_end - run_start) as usize, 0);
        backing.set_len(backing_size(new_size))?;
        let cipher = self.cipher.as_ref().ok_or(Error::HeaderTruncated(0))?;
        for sector in sectors_overlapping(run_start, run_end, new_size) {
            cipher.encrypt_sector(sector, span_mut(&mut buf, run_start, sector));
        }
        backing.write_all_at(&buf, HEADER_LEN + run_start)?;
        Ok(())
    }

    /// The first `len` plaintext bytes, zero-padded past `old_size`.
    fn read_prefix(&self, backing: &impl Backing, old_size: u64, len: u64) -> Result<Vec<u8>> {
        let mut plain = if old_size == 0 {
            Vec::new()
        } else {
            self.read_range(backing, old_size, 0, old_size.min(len))?
        };
        plain.resize(len as usize, 0);
        Ok(plain)
    }

    /// Writes a file under 16 bytes under a fresh file ID: its keystream is never used twice.
    fn rewrite_short(
        &mut self,
        key: &ContentKey,
        backing: &impl Backing,
        plain: &[u8],
    ) -> Result<()> {
        let cipher = FileCipher::new(key, FileHeader::random());
        let mut out = cipher.header().to_bytes().to_vec();
        let mut sector = plain.to_vec();
        cipher.encrypt_sector(
            Sector {
                start: 0,
                len: plain.len() as u64,
            },
            &mut sector,
        );
        out.extend_from_slice(&sector);
        // Written before the length is set: a crash between the two then leaves a header (and at
        // worst stale bytes after the new contents), never a file extended with zeros where its
        // header should be, which no repair could read again (tests/crashpoints.rs found it).
        backing.write_all_at(&out, 0)?;
        backing.set_len(out.len() as u64)?;
        *self = Self::with_cipher(Some(cipher));
        Ok(())
    }

    /// A file opened while empty may have been given a header by another writer since.
    fn reload_if_unloaded(&mut self, key: &ContentKey, backing: &impl Backing) -> Result<()> {
        if self.cipher.is_none() {
            *self = Self::load(backing, key)?;
        }
        Ok(())
    }

    fn start_new_file(&mut self, key: &ContentKey, backing: &impl Backing) -> Result<()> {
        let cipher = FileCipher::new(key, FileHeader::random());
        backing.write_all_at(&cipher.header().to_bytes(), 0)?;
        *self = Self::with_cipher(Some(cipher));
        Ok(())
    }
}

/// When a file grows from `old_size`, the plaintext range of its old final sector if that
/// sector is not a sector of the grown file (it was short or partial, or now absorbs a tail).
fn changed_tail(old_size: u64, new_size: u64) -> Option<(u64, u64)> {
    let last = sector_at(old_size.checked_sub(1)?, old_size)?;
    (new_size > old_size && sector_at(last.start, new_size) != Some(last))
        .then_some((last.start, old_size))
}

/// Sorts and merges overlapping or touching ranges.
fn merge(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (from, to) in ranges {
        match merged.last_mut() {
            // Ranges closer than two sectors (of up to 4096 + 15 bytes) may share a sector.
            Some(last) if from <= last.1 + 3 * BLOCK_SIZE => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    merged
}

fn span_mut(buf: &mut [u8], buf_start: u64, sector: Sector) -> &mut [u8] {
    let at = (sector.start - buf_start) as usize;
    &mut buf[at..at + sector.len as usize]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Write(u64, Vec<u8>),
        Truncate(u64),
        Read(u64, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Offsets cluster around block edges, where the sector rules live.
        let offset = prop_oneof![0u64..40, 4070u64..4130, 8170u64..8210, 0u64..20000];
        prop_oneof![
            (
                offset.clone(),
                proptest::collection::vec(any::<u8>(), 1..9000)
            )
                .prop_map(|(o, d)| Op::Write(o, d)),
            (
                offset.clone(),
                proptest::collection::vec(any::<u8>(), 1..20)
            )
                .prop_map(|(o, d)| Op::Write(o, d)),
            offset.clone().prop_map(Op::Truncate),
            (offset, 0usize..10000).prop_map(|(o, l)| Op::Read(o, l)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn behaves_like_a_byte_vector(ops in proptest::collection::vec(op(), 1..25)) {
            let key = ContentKey::from_bytes([1; 32]);
            let backing = MemBacking::default();
            let mut file = FileContent::default();
            let mut model: Vec<u8> = Vec::new();
            for op in ops {
                let short_before = file.header().copied();
                match op {
                    Op::Write(offset, data) => {
                        file.write(&key, &backing, offset, &data).unwrap();
                        let end = offset as usize + data.len();
                        if model.len() < end { model.resize(end, 0); }
                        model[offset as usize..end].copy_from_slice(&data);
                        if model.len() < 16 {
                            prop_assert_ne!(file.header().copied(), short_before, "short file kept its ID");
                        }
                    }
                    Op::Truncate(size) => {
                        file.truncate(&key, &backing, size).unwrap();
                        model.resize(size as usize, 0);
                    }
                    Op::Read(offset, len) => {
                        let start = (offset as usize).min(model.len());
                        let end = (start + len).min(model.len());
                        prop_assert_eq!(file.read(&backing, offset, len).unwrap(), &model[start..end]);
                    }
                }
                prop_assert_eq!(backing.backing_len().unwrap(), backing_size(model.len() as u64));
                let reopened = FileContent::load(&backing, &key).unwrap();
                prop_assert_eq!(reopened.read(&backing, 0, model.len()).unwrap(), &model[..]);
            }
        }
    }

    #[test]
    fn empty_file_has_no_header_and_truncate_to_zero_forgets_the_id() {
        let key = ContentKey::from_bytes([2; 32]);
        let backing = MemBacking::default();
        let mut file = FileContent::default();
        assert_eq!(file.read(&backing, 0, 10).unwrap(), b"");
        file.write(&key, &backing, 0, &[7; 5000]).unwrap();
        let first = *file.header().unwrap();
        file.truncate(&key, &backing, 0).unwrap();
        assert_eq!(backing.backing_len().unwrap(), 0);
        file.write(&key, &backing, 0, &[7; 5000]).unwrap();
        assert_ne!(*file.header().unwrap(), first);
    }

    #[test]
    fn sparse_regions_stay_zero_on_the_backing_file() {
        let key = ContentKey::from_bytes([2; 32]);
        let backing = MemBacking::default();
        let mut file = FileContent::default();
        file.write(&key, &backing, 5 * BLOCK_SIZE, b"end of a sparse file")
            .unwrap();
        let raw = backing.0.borrow();
        let hole = &raw[HEADER_LEN as usize..(HEADER_LEN + 5 * BLOCK_SIZE) as usize];
        assert!(hole.iter().all(|&b| b == 0));
    }

    #[test]
    fn truncated_header_is_a_typed_error() {
        let key = ContentKey::from_bytes([2; 32]);
        let backing = MemBacking(RefCell::new(vec![0, 1, 2]));
        assert!(matches!(
            FileContent::load(&backing, &key),
            Err(Error::HeaderTruncated(3))
        ));
        assert!(matches!(
            FileContent::size(&backing),
            Err(Error::HeaderTruncated(3))
        ));
    }
}
