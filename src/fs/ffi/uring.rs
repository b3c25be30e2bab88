//! The memory and commands of FUSE over io_uring, after the kernel's
//! Documentation/filesystems/fuse/fuse-io-uring.rst and include/uapi/linux/fuse.h: one queue's
//! ring and its entries, each entry a header buffer and a payload buffer that the kernel writes
//! a request into and reads the reply from.
//!
//! Sound because of two rules kept here, not by the callers: an entry's memory is read or
//! written only while the kernel has handed the entry to us (from the completion of its command
//! to the submission of the next, which takes `&mut`), and it is freed only once no command of
//! the queue is outstanding (otherwise it is leaked, see [`Queue`]'s `Drop`).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::{self, NonNull};
use std::sync::Mutex;

use io_uring::{cqueue, opcode, squeue, types, IoUring};

/// `FUSE_IO_URING_CMD_REGISTER`: hand the kernel an entry's buffers; it completes with a request.
const CMD_REGISTER: u32 = 1;
/// `FUSE_IO_URING_CMD_COMMIT_AND_FETCH`: the reply is in the entry; complete with the next request.
const CMD_COMMIT_AND_FETCH: u32 = 2;

/// `struct fuse_uring_req_header`: `in_out[128]` (the request's `fuse_in_header`, the reply's
/// `fuse_out_header`), `op_in[128]` (the request's per-opcode header), then
/// `struct fuse_uring_ent_in_out { u64 flags; u64 commit_id; u32 payload_sz; u32 padding;
/// u64 reserved; }`.
const HEADER_SIZE: usize = 288;
const OP_IN: usize = 128;
const OP_IN_MAX: usize = 128;
const ENT_COMMIT_ID: usize = 264;
const ENT_PAYLOAD_SZ: usize = 272;
/// `struct fuse_in_header`: u32 len, u32 opcode, u64 unique, then 24 more bytes.
pub const IN_HEADER_SIZE: usize = 40;
/// `struct fuse_out_header`: u32 len, i32 error, u64 unique.
pub const OUT_HEADER_SIZE: usize = 16;

/// The payload buffer starts this far into an entry's allocation, after the header buffer.
/// A request's two headers are copied just before it, so that the request reads as one
/// message laid out as /dev/fuse gives it, without moving the payload (a write's data).
const PAYLOAD_OFFSET: usize = 1024;

/// One entry of a queue: its buffers, shared with the kernel while it holds the entry.
///
/// The memory is an anonymous mapping of its own: page-aligned, and zero pages that become
/// resident only as requests touch them (a 1 MiB payload buffer that only ever carries 10 KiB
/// writes costs 3 pages, not 256). `std::alloc::alloc_zeroed` with page alignment zeroes, and so
/// touches, the whole allocation: 1 MiB resident per entry from the start.
struct Entry {
    region: NonNull<u8>,
    /// Bytes mapped at `region`.
    size: usize,
    /// Bytes of payload the kernel may write or read (at least its `max_payload_sz`).
    capacity: usize,
    /// `iov[0]` the header buffer, `iov[1]` the payload buffer: the REGISTER command's argument.
    iov: [libc::iovec; 2],
}

impl Entry {
    fn new(capacity: usize) -> io::Result<Entry> {
        let size = PAYLOAD_OFFSET
            .checked_add(capacity)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a new private anonymous mapping (no address hint, no file): it aliases nothing,
        // and the kernel checks the size (non-zero: PAYLOAD_OFFSET alone is 1024).
        let mapped = unsafe {
            libc::mmap(
                ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if mapped == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let region = NonNull::new(mapped.cast::<u8>())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        let base = region.as_ptr();
        let iov = [
            libc::iovec {
                iov_base: base.cast(),
                iov_len: HEADER_SIZE,
            },
            libc::iovec {
                // SAFETY: PAYLOAD_OFFSET is inside the allocation of PAYLOAD_OFFSET + capacity.
                iov_base: unsafe { base.add(PAYLOAD_OFFSET) }.cast(),
                iov_len: capacity,
            },
        ];
        Ok(Entry {
            region,
            size,
            capacity,
            iov,
        })
    }

    fn read_u32(&self, offset: usize) -> u32 {
        debug_assert!(offset + 4 <= HEADER_SIZE);
        // SAFETY: inside the header buffer, which is ours while the caller holds `&self` of an
        // entry the kernel has handed back (module rule); unaligned reads are allowed.
        unsafe { ptr::read_unaligned(self.region.as_ptr().add(offset).cast::<u32>()) }
    }

    fn read_u64(&self, offset: usize) -> u64 {
        debug_assert!(offset + 8 <= HEADER_SIZE);
        // SAFETY: as in `read_u32`.
        unsafe { ptr::read_unaligned(self.region.as_ptr().add(offset).cast::<u64>()) }
    }

    /// The request the kernel wrote into this entry.
    fn request(&mut self) -> Result<Request<'_>, Malformed> {
        let len = self.read_u32(0) as usize;
        let unique = self.read_u64(8);
        let commit_id = self.read_u64(ENT_COMMIT_ID);
        let payload = self.read_u32(ENT_PAYLOAD_SZ) as usize;
        let malformed = Malformed { unique, commit_id };
        if payload > self.capacity {
            return Err(malformed);
        }
        // What is neither the in header nor payload is the per-opcode header, in `op_in`.
        let Some(op_len) = len
            .checked_sub(IN_HEADER_SIZE + payload)
            .filter(|&n| n <= OP_IN_MAX)
        else {
            return Err(malformed);
        };
        let start = PAYLOAD_OFFSET - op_len - IN_HEADER_SIZE;
        // Requests are parsed as /dev/fuse delivers them, from an 8-aligned start; every
        // per-opcode header of the ABI is a multiple of 8 bytes long.
        if !start.is_multiple_of(8) {
            return Err(malformed);
        }
        let base = self.region.as_ptr();
        // SAFETY: all ranges are inside the allocation (start >= HEADER_SIZE since
        // PAYLOAD_OFFSET - 168 > 288; the message ends at PAYLOAD_OFFSET + payload <=
        // PAYLOAD_OFFSET + capacity), the copies do not overlap, and the memory is ours (the
        // module rule, with `&mut self` excluding every other borrow).
        let message = unsafe {
            ptr::copy_nonoverlapping(base, base.add(start), IN_HEADER_SIZE);
            ptr::copy_nonoverlapping(base.add(OP_IN), base.add(start + IN_HEADER_SIZE), op_len);
            std::slice::from_raw_parts(base.add(start), len)
        };
        Ok(Request {
            message,
            unique,
            commit_id,
        })
    }

    /// Writes `reply` (a `fuse_out_header` and its arguments) where the kernel reads it on
    /// commit: the header into `in_out`, the arguments into the payload buffer.
    fn write_reply(&mut self, reply: &[u8]) -> io::Result<()> {
        if reply.len() < OUT_HEADER_SIZE || reply.len() - OUT_HEADER_SIZE > self.capacity {
            return Err(io::Error::from_raw_os_error(libc::EOVERFLOW));
        }
        let (header, args) = reply.split_at(OUT_HEADER_SIZE);
        let base = self.region.as_ptr();
        // SAFETY: the header fits `in_out` (16 of 128 bytes), the arguments the payload buffer
        // (checked above), `payload_sz` is inside the header buffer; the memory is ours while
        // `&mut self` is held (module rule) and `reply` is a separate allocation.
        unsafe {
            ptr::copy_nonoverlapping(header.as_ptr(), base, OUT_HEADER_SIZE);
            ptr::copy_nonoverlapping(args.as_ptr(), base.add(PAYLOAD_OFFSET), args.len());
            ptr::write_unaligned(
                base.add(ENT_PAYLOAD_SZ).cast::<u32>(),
                args.len() as u32, // at most `capacity`, a u32 by construction (Queue::new)
            );
        }
        Ok(())
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        // SAFETY: mapped in `new` with this size and not unmapped since; `Queue` drops entries
        // only when the kernel holds none of them (module rule), and no reference into the
        // mapping outlives the entry (requests borrow it).
        unsafe { libc::munmap(self.region.as_ptr().cast(), self.size) };
    }
}

/// A way to write a reply straight into an entry while its request is still being served,
/// sparing the reply a copy: open only for a request whose message leaves the payload buffer
/// untouched (one without payload: a read, a listing, an attribute request), and closed before
/// the entry goes back to the kernel, under the same lock as every write through it.
#[derive(Debug, Default)]
pub struct ReplyWindow(Mutex<Option<Window>>);

#[derive(Debug)]
struct Window {
    /// The entry's header buffer (`in_out` takes the `fuse_out_header`).
    header: NonNull<u8>,
    /// The entry's payload buffer.
    payload: NonNull<u8>,
    capacity: usize,
    /// Bytes of arguments written into the payload buffer, once a reply was.
    written: Option<usize>,
}

// SAFETY: the pointers are only written through under the mutex, only while the window is open,
// and it is open only while the entry's memory is ours and no borrow covers the written ranges
// (see `Queue::open_window`).
unsafe impl Send for Window {}

impl ReplyWindow {
    /// Writes a reply (`fuse_out_header`, then its arguments, across `data`) into the entry the
    /// window is open onto. `Ok(false)` when it is not open (the caller stages the reply).
    pub fn write(&self, data: &[std::io::IoSlice<'_>]) -> io::Result<bool> {
        let mut window = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(window) = window.as_mut() else {
            return Ok(false);
        };
        let total: usize = data.iter().map(|slice| slice.len()).sum();
        if total < OUT_HEADER_SIZE || total - OUT_HEADER_SIZE > window.capacity {
            return Err(io::Error::from_raw_os_error(libc::EOVERFLOW));
        }
        let mut at = 0;
        for slice in data {
            for (offset, chunk) in split_at_header(at, slice) {
                let target = if offset < OUT_HEADER_SIZE {
                    // SAFETY: offset + chunk.len() <= OUT_HEADER_SIZE (split_at_header), inside
                    // `in_out`.
                    unsafe { window.header.as_ptr().add(offset) }
                } else {
                    // SAFETY: offset - OUT_HEADER_SIZE + chunk.len() <= total - OUT_HEADER_SIZE
                    // <= capacity, checked above: inside the payload buffer.
                    unsafe { window.payload.as_ptr().add(offset - OUT_HEADER_SIZE) }
                };
                // SAFETY: the window is open, so the entry's memory is ours and no live borrow
                // covers its header or payload buffer (`Queue::open_window`); `chunk` is caller
                // memory, not the entry's.
                unsafe { ptr::copy_nonoverlapping(chunk.as_ptr(), target, chunk.len()) };
            }
            at += slice.len();
        }
        window.written = Some(total - OUT_HEADER_SIZE);
        Ok(true)
    }

    /// Closes the window: the arguments' length if a reply was written through it.
    fn close(&self) -> Option<usize> {
        let mut window = self.0.lock().unwrap_or_else(|e| e.into_inner());
        window.take().and_then(|window| window.written)
    }
}

/// A [`ReplyWindow`] open onto an entry; closed when dropped.
pub struct OpenWindow<'w>(&'w ReplyWindow);

impl Drop for OpenWindow<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// `slice`, which starts `at` bytes into a reply, cut where the out header ends: (offset in the
/// reply, bytes).
fn split_at_header(at: usize, slice: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let in_header = OUT_HEADER_SIZE.saturating_sub(at).min(slice.len());
    let (head, rest) = slice.split_at(in_header);
    [(at, head), (at + in_header, rest)]
        .into_iter()
        .filter(|(_, bytes)| !bytes.is_empty())
}

/// A request as the kernel delivered it to an entry.
pub struct Request<'a> {
    /// The `fuse_in_header`, the per-opcode header and the payload, contiguous.
    pub message: &'a [u8],
    pub unique: u64,
    /// What the commit of the reply quotes.
    pub commit_id: u64,
}

/// A request whose lengths do not add up: answered with an error, not parsed.
#[derive(Debug, Clone, Copy)]
pub struct Malformed {
    pub unique: u64,
    pub commit_id: u64,
}

/// One FUSE queue: an io_uring with 128-byte submission entries (the FUSE command needs the
/// 80-byte command area) and `depth` entries, all owned by the one thread that serves it.
pub struct Queue {
    ring: IoUring<squeue::Entry128, cqueue::Entry>,
    qid: u16,
    entries: Vec<Entry>,
    /// Commands submitted and not completed, per entry: while one is, the kernel may use the
    /// entry's memory.
    outstanding: Vec<bool>,
}

// SAFETY: a Queue owns its ring and its entries' memory outright (no other handle to either
// exists), so moving it to another thread moves all of it.
unsafe impl Send for Queue {}

impl Queue {
    /// A queue of `depth` entries with `capacity` bytes of payload each.
    pub fn new(qid: u16, depth: usize, capacity: usize) -> io::Result<Queue> {
        if u32::try_from(capacity).is_err() || depth == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let ring_size = u32::try_from(depth.next_power_of_two())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // One thread submits and reaps (the queue's, which `enable` makes the ring's issuer), so
        // the kernel may run the task work that delivers a request only when that thread waits
        // for completions, not by interrupting it mid-operation. Kernels before 6.1 lack these
        // flags: a plain ring then.
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_r_disabled()
            .build(ring_size)
            .or_else(|_| IoUring::builder().build(ring_size))?;
        let entries = (0..depth)
            .map(|_| Entry::new(capacity))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Queue {
            ring,
            qid,
            outstanding: vec![false; depth],
            entries,
        })
    }

    /// Makes the calling thread the ring's one submitter (for a ring set up disabled; a plain
    /// ring needs nothing). Called by the thread that will serve the queue, before anything else.
    pub fn enable(&mut self) -> io::Result<()> {
        match self.ring.submitter().register_enable_rings() {
            // EBADFD: the ring was not disabled (the fallback without these flags).
            Err(e) if e.raw_os_error() == Some(libc::EBADFD) => Ok(()),
            result => result,
        }
    }

    /// Registers every entry with the kernel (`FUSE_IO_URING_CMD_REGISTER`), not yet submitted.
    pub fn register_all(&mut self, device: BorrowedFd<'_>) -> io::Result<()> {
        (0..self.entries.len()).try_for_each(|index| self.register(device, index))
    }

    /// Registers entry `index` (again, after the kernel answered EAGAIN), not yet submitted.
    pub fn register(&mut self, device: BorrowedFd<'_>, index: usize) -> io::Result<()> {
        assert!(!self.outstanding[index], "entry {index} is the kernel's");
        let iov = self.entries[index].iov.as_ptr();
        let command = opcode::UringCmd80::new(types::Fd(device.as_raw_fd()), CMD_REGISTER)
            .cmd(self.command_area(0))
            .addr(Some(iov as u64))
            .build();
        self.push(index, with_len(command, 2))
    }

    /// A REGISTER the kernel must refuse (no buffers), which turns io_uring off for the
    /// connection: requests it holds back waiting for the ring then go through /dev/fuse.
    pub fn register_refused(&mut self, device: BorrowedFd<'_>) -> io::Result<()> {
        let command = opcode::UringCmd80::new(types::Fd(device.as_raw_fd()), CMD_REGISTER)
            .cmd(self.command_area(0))
            .build();
        self.push(0, command)
    }

    /// Entries in the queue.
    pub fn entries(&self) -> usize {
        self.entries.len()
    }

    /// The request delivered to entry `index` (after its completion said so).
    pub fn request(&mut self, index: usize) -> Result<Request<'_>, Malformed> {
        assert!(!self.outstanding[index], "entry {index} is the kernel's");
        self.entries[index].request()
    }

    /// Writes the reply into entry `index` and queues its commit (not yet submitted).
    pub fn commit(
        &mut self,
        device: BorrowedFd<'_>,
        index: usize,
        commit_id: u64,
        reply: &[u8],
    ) -> io::Result<()> {
        assert!(!self.outstanding[index], "entry {index} is the kernel's");
        self.entries[index].write_reply(reply)?;
        self.push_commit(device, index, commit_id)
    }

    fn push_commit(
        &mut self,
        device: BorrowedFd<'_>,
        index: usize,
        commit_id: u64,
    ) -> io::Result<()> {
        let command = opcode::UringCmd80::new(types::Fd(device.as_raw_fd()), CMD_COMMIT_AND_FETCH)
            .cmd(self.command_area(commit_id))
            .build();
        self.push(index, command)
    }

    /// Opens `window` onto entry `index` when the request delivered there has no payload, so
    /// that the reply can be written straight into the entry while the request is served; the
    /// request's message then lies wholly before the payload buffer, apart from what the window
    /// writes. It closes when [`Queue::commit_window`] takes it, or when it is dropped (a
    /// panic in the operation included), so that nothing writes into the entry afterwards.
    pub fn open_window<'w>(
        &mut self,
        index: usize,
        window: &'w ReplyWindow,
    ) -> Option<OpenWindow<'w>> {
        assert!(!self.outstanding[index], "entry {index} is the kernel's");
        let entry = &self.entries[index];
        if entry.read_u32(ENT_PAYLOAD_SZ) != 0 {
            return None;
        }
        let base = entry.region.as_ptr();
        // SAFETY: PAYLOAD_OFFSET is inside the entry's allocation.
        let payload = unsafe { NonNull::new_unchecked(base.add(PAYLOAD_OFFSET)) };
        *window.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(Window {
            header: entry.region,
            payload,
            capacity: entry.capacity,
            written: None,
        });
        Some(OpenWindow(window))
    }

    /// Closes `window` and, if a reply was written through it into entry `index`, queues its
    /// commit (not yet submitted) and returns true; false means no reply came through it.
    pub fn commit_window(
        &mut self,
        device: BorrowedFd<'_>,
        index: usize,
        commit_id: u64,
        window: OpenWindow<'_>,
    ) -> io::Result<bool> {
        let Some(written) = window.0.close() else {
            return Ok(false);
        };
        let entry = &mut self.entries[index];
        // SAFETY: inside the header buffer; the memory is ours (`&mut self`, entry not
        // outstanding, window closed).
        unsafe {
            ptr::write_unaligned(
                entry.region.as_ptr().add(ENT_PAYLOAD_SZ).cast::<u32>(),
                written as u32, // at most `capacity`, a u32 (Queue::new)
            )
        };
        self.push_commit(device, index, commit_id)?;
        Ok(true)
    }

    /// `struct fuse_uring_cmd_req { u64 flags; u64 commit_id; u16 qid; u8 padding[6]; }` in the
    /// SQE's command area, the rest zero.
    fn command_area(&self, commit_id: u64) -> [u8; 80] {
        let mut area = [0u8; 80];
        area[8..16].copy_from_slice(&commit_id.to_ne_bytes());
        area[16..18].copy_from_slice(&self.qid.to_ne_bytes());
        area
    }

    fn push(&mut self, index: usize, command: squeue::Entry128) -> io::Result<()> {
        let command = command.user_data(index as u64);
        loop {
            // SAFETY: the command points at entry `index`'s iovec array and buffers, which live
            // as long as the queue and are not touched by us until its completion (module rule:
            // `outstanding` marks it, `Drop` leaks rather than frees while any is set).
            let pushed = unsafe { self.ring.submission().push(&command) };
            if pushed.is_ok() {
                self.outstanding[index] = true;
                return Ok(());
            }
            // The submission queue is full: hand what is there to the kernel first.
            self.ring.submit()?;
        }
    }

    /// Submits what is queued and waits for at least one completion (a signal is not an error:
    /// the caller waits again).
    pub fn submit_and_wait(&mut self) -> io::Result<()> {
        match self.ring.submit_and_wait(1) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The completions so far, as (entry, result): a result below zero is an errno, and the
    /// entry is then no longer the kernel's nor registered.
    pub fn completions(&mut self, into: &mut Vec<(usize, i32)>) {
        for completion in self.ring.completion() {
            let index = completion.user_data() as usize;
            if let Some(outstanding) = self.outstanding.get_mut(index) {
                *outstanding = false;
                into.push((index, completion.result()));
            }
        }
    }

    /// Commands still with the kernel.
    pub fn outstanding(&self) -> usize {
        self.outstanding.iter().filter(|&&o| o).count()
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        if self.outstanding() > 0 {
            // The kernel may still write into these buffers (a request it was delivering as the
            // ring closed): their memory must outlive it, so it is never given back.
            for entry in self.entries.drain(..) {
                std::mem::forget(entry);
            }
        }
    }
}

/// `command` with the SQE's `len` field set, which the FUSE REGISTER command reads (the number of
/// iovecs) and the io-uring crate's `UringCmd80` does not expose.
fn with_len(command: squeue::Entry128, len: u32) -> squeue::Entry128 {
    /// `struct io_uring_sqe`: `__u32 len` follows opcode, flags, ioprio, fd, off and addr.
    const SQE_LEN: usize = 24;
    // SAFETY: `Entry128` is `#[repr(C)]` over the kernel's 64-byte `io_uring_sqe` and 64 more
    // bytes, 128 in all (transmute checks the size); every byte pattern is a valid SQE value.
    let mut bytes: [u8; 128] = unsafe { std::mem::transmute(command) };
    bytes[SQE_LEN..SQE_LEN + 4].copy_from_slice(&len.to_ne_bytes());
    // SAFETY: as above, back to the same type.
    unsafe { std::mem::transmute::<[u8; 128], squeue::Entry128>(bytes) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes what the kernel writes for a request: in header, op header, payload.
    fn deliver(entry: &mut Entry, opcode: u32, unique: u64, op: &[u8], payload: &[u8]) {
        let len = (IN_HEADER_SIZE + op.len() + payload.len()) as u32;
        let base = entry.region.as_ptr();
        let mut header = [0u8; IN_HEADER_SIZE];
        header[0..4].copy_from_slice(&len.to_ne_bytes());
        header[4..8].copy_from_slice(&opcode.to_ne_bytes());
        header[8..16].copy_from_slice(&unique.to_ne_bytes());
        // SAFETY (test): inside the entry's buffers, which nothing else uses.
        unsafe {
            ptr::copy_nonoverlapping(header.as_ptr(), base, IN_HEADER_SIZE);
            ptr::copy_nonoverlapping(op.as_ptr(), base.add(OP_IN), op.len());
            ptr::copy_nonoverlapping(payload.as_ptr(), base.add(PAYLOAD_OFFSET), payload.len());
            ptr::write_unaligned(base.add(ENT_COMMIT_ID).cast::<u64>(), unique);
            ptr::write_unaligned(base.add(ENT_PAYLOAD_SZ).cast::<u32>(), payload.len() as u32);
        }
    }

    #[test]
    fn entry_memory_is_page_aligned_and_resident_only_where_touched() {
        let mut entry = Entry::new(1 << 20).unwrap();
        assert_eq!(entry.region.as_ptr() as usize % 4096, 0);
        let resident = |entry: &Entry| {
            let mut pages = vec![0u8; entry.size.div_ceil(4096)];
            // SAFETY (test): mincore of the entry's own mapping, one byte per page in `pages`.
            let r = unsafe {
                libc::mincore(
                    entry.region.as_ptr().cast(),
                    entry.size,
                    pages.as_mut_ptr().cast(),
                )
            };
            assert_eq!(r, 0, "{}", io::Error::last_os_error());
            pages.iter().filter(|&&p| p & 1 != 0).count()
        };
        assert_eq!(resident(&entry), 0);
        deliver(&mut entry, 16, 1, &[0; 40], &[1; 10 * 1024]);
        // bytes 0 to 1024 + 10 KiB: the first page (headers and the payload's start) and two more
        assert_eq!(resident(&entry), 3);
    }

    #[test]
    fn a_request_reads_as_one_message_as_dev_fuse_gives_it() {
        let mut entry = Entry::new(8192).unwrap();
        let op = [7u8; 40]; // fuse_write_in
        let data = b"the data of a write";
        deliver(&mut entry, 16, 42, &op, data);
        let request = entry.request().unwrap();
        assert_eq!((request.unique, request.commit_id), (42, 42));
        let message = request.message;
        assert_eq!(message.len(), IN_HEADER_SIZE + op.len() + data.len());
        assert_eq!(message.as_ptr() as usize % 8, 0);
        assert_eq!(&message[4..8], &16u32.to_ne_bytes());
        assert_eq!(&message[IN_HEADER_SIZE..IN_HEADER_SIZE + 40], &op);
        assert_eq!(&message[IN_HEADER_SIZE + 40..], data);
    }

    #[test]
    fn a_request_without_an_op_header_or_payload() {
        let mut entry = Entry::new(8192).unwrap();
        deliver(&mut entry, 3, 5, &[], b"name\0");
        assert_eq!(
            &entry.request().unwrap().message[IN_HEADER_SIZE..],
            b"name\0"
        );
        deliver(&mut entry, 3, 6, &[1; 16], b"");
        assert_eq!(entry.request().unwrap().message.len(), IN_HEADER_SIZE + 16);
    }

    #[test]
    fn lengths_that_do_not_add_up_are_refused() {
        let mut entry = Entry::new(8192).unwrap();
        deliver(&mut entry, 16, 9, &[0; 8], b"abc");
        // len says less than header + payload
        // SAFETY (test): the entry's header buffer.
        unsafe { ptr::write_unaligned(entry.region.as_ptr().cast::<u32>(), 20) };
        assert_eq!(entry.request().err().unwrap().unique, 9);
        // an op header longer than op_in
        deliver(&mut entry, 16, 10, &[0; 8], b"abc");
        // SAFETY (test): as above.
        unsafe { ptr::write_unaligned(entry.region.as_ptr().cast::<u32>(), 40 + 136 + 3) };
        assert!(entry.request().is_err());
        // a payload larger than the buffer
        deliver(&mut entry, 16, 11, &[0; 8], b"abc");
        // SAFETY (test): as above.
        unsafe {
            ptr::write_unaligned(
                entry.region.as_ptr().add(ENT_PAYLOAD_SZ).cast::<u32>(),
                9000,
            )
        };
        assert!(entry.request().is_err());
        // an op header that would misalign the message
        deliver(&mut entry, 16, 12, &[0; 5], b"");
        assert!(entry.request().is_err());
    }

    #[test]
    fn a_reply_lands_where_the_kernel_reads_it() {
        let mut entry = Entry::new(64).unwrap();
        let mut reply = vec![0u8; OUT_HEADER_SIZE];
        reply[0..4].copy_from_slice(&24u32.to_ne_bytes());
        reply[8..16].copy_from_slice(&77u64.to_ne_bytes());
        reply.extend_from_slice(b"8 bytes!");
        entry.write_reply(&reply).unwrap();
        assert_eq!(entry.read_u32(0), 24);
        assert_eq!(entry.read_u64(8), 77);
        assert_eq!(entry.read_u32(ENT_PAYLOAD_SZ), 8);
        // SAFETY (test): the payload buffer.
        let payload =
            unsafe { std::slice::from_raw_parts(entry.region.as_ptr().add(PAYLOAD_OFFSET), 8) };
        assert_eq!(payload, b"8 bytes!");
        // larger than the payload buffer: refused, nothing half written matters
        reply.extend_from_slice(&[0; 64]);
        assert!(entry.write_reply(&reply).is_err());
        assert!(entry.write_reply(&reply[..8]).is_err());
    }

    #[test]
    fn a_reply_through_the_window_lands_where_the_kernel_reads_it() {
        use std::io::IoSlice;
        let mut queue = Queue::new(0, 1, 64).unwrap();
        let window = ReplyWindow::default();
        // Closed: the caller stages the reply instead.
        assert!(!window.write(&[IoSlice::new(&[0; 16])]).unwrap());
        // A request with payload: no window (its bytes share the payload buffer).
        deliver(&mut queue.entries[0], 16, 1, &[0; 40], b"data");
        assert!(queue.open_window(0, &window).is_none());
        // Without payload: the reply goes straight in, its header cut across slices.
        deliver(&mut queue.entries[0], 15, 2, &[0; 40], b"");
        let open = queue.open_window(0, &window).unwrap();
        let mut header = [0u8; OUT_HEADER_SIZE];
        header[0..4].copy_from_slice(&26u32.to_ne_bytes());
        header[8..16].copy_from_slice(&2u64.to_ne_bytes());
        let slices = [
            IoSlice::new(&header[..5]),
            IoSlice::new(&header[5..]),
            IoSlice::new(b"ten bytes!"),
        ];
        assert!(window.write(&slices).unwrap());
        let too_long = [IoSlice::new(&header), IoSlice::new(&[0; 65])];
        assert!(window.write(&too_long).is_err());
        let entry = &queue.entries[0];
        assert_eq!((entry.read_u32(0), entry.read_u64(8)), (26, 2));
        // SAFETY (test): the payload buffer, ours (nothing was submitted).
        let payload =
            unsafe { std::slice::from_raw_parts(entry.region.as_ptr().add(PAYLOAD_OFFSET), 10) };
        assert_eq!(payload, b"ten bytes!");
        drop(open);
        // Dropped (as on a panic): closed, nothing more gets in.
        assert!(!window.write(&slices).unwrap());
    }

    #[test]
    fn cutting_a_reply_at_its_header() {
        let cut = |at, bytes: &'static [u8]| split_at_header(at, bytes).collect::<Vec<_>>();
        assert_eq!(cut(0, &[1; 20]), [(0, &[1u8; 16][..]), (16, &[1; 4][..])]);
        assert_eq!(cut(10, &[2; 6]), [(10, &[2u8; 6][..])]);
        assert_eq!(cut(16, &[3; 2]), [(16, &[3u8; 2][..])]);
        assert_eq!(cut(4, &[]), []);
    }

    #[test]
    fn the_register_command_carries_two_iovecs() {
        let command = opcode::UringCmd80::new(types::Fd(3), CMD_REGISTER)
            .addr(Some(0x1000))
            .build();
        // SAFETY (test): as in `with_len`.
        let bytes: [u8; 128] = unsafe { std::mem::transmute(with_len(command, 2)) };
        assert_eq!(bytes[0], 46, "IORING_OP_URING_CMD");
        assert_eq!(&bytes[24..28], &2u32.to_ne_bytes());
        assert_eq!(&bytes[16..24], &0x1000u64.to_ne_bytes());
    }
}
