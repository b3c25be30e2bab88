//! Serving FUSE over io_uring: once the session is up and the kernel agreed at INIT, one thread
//! per possible CPU registers that CPU's queue ([`ffi::uring::Queue`]) and loops: take the
//! completions (each a request the kernel wrote into an entry), hand each request to the
//! filesystem through fuser's [`Dispatcher`], write its reply into the entry and commit it with
//! the fetch of the next request, one submission for all. The kernel queues a request on the
//! queue of the CPU its caller runs on, so each thread is pinned to its CPU. Interrupts and
//! forgets still arrive on /dev/fuse, served by fuser's own threads.
//!
//! The kernel uses the ring only once every queue has registered; until then, and for good if
//! a registration fails, requests keep flowing through /dev/fuse. The threads end when the
//! connection ends (unmount, abort): the kernel completes every entry with an error.

use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use fuser::{Dispatcher, Filesystem, ReplyTransport};
use io_uring::{cqueue, squeue, IoUring};

use super::ffi::uring::{Queue, ReplyWindow, OUT_HEADER_SIZE};

/// Checks that an io_uring with 128-byte submission entries can be set up here (it cannot when
/// `kernel.io_uring_disabled` says so, or under a seccomp filter).
pub fn probe() -> io::Result<()> {
    IoUring::<squeue::Entry128, cqueue::Entry>::builder()
        .build(1)
        .map(drop)
}

/// Starts one thread per queue, each with `depth` entries of `capacity` payload bytes.
pub fn start<FS: Filesystem>(
    dispatcher: Dispatcher<FS>,
    depth: usize,
    capacity: usize,
) -> io::Result<Vec<JoinHandle<io::Result<()>>>> {
    let queues = possible_cpus()?.len();
    // All rings and buffers first: a queue that could not be set up would leave the kernel
    // waiting for the ring forever (it holds requests back until every queue registers).
    let queues = match (0..queues)
        .map(|qid| Queue::new(qid as u16, depth, capacity))
        .collect::<io::Result<Vec<_>>>()
    {
        Ok(queues) => queues,
        Err(e) => {
            tracing::warn!("cannot set up the io_uring queues: {e}; serving through /dev/fuse");
            fall_back(&dispatcher)?;
            return Ok(Vec::new());
        }
    };
    tracing::info!(
        "serving through FUSE over io_uring: {} queues of {depth} requests",
        queues.len()
    );
    let mut threads = Vec::with_capacity(queues.len());
    let refused = Arc::new(AtomicBool::new(false));
    // The kernel puts a request on queue N when its caller runs on CPU N.
    for (cpu, queue) in queues.into_iter().enumerate() {
        let dispatcher = dispatcher.clone();
        let refused = refused.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("veilfs-uring-{cpu}"))
                .spawn(move || {
                    let served = serve_queue(queue, &dispatcher, cpu, &refused);
                    if let Err(e) = &served {
                        // Requests from this CPU would wait for this queue forever: the mount
                        // ends (its users see ENOTCONN) rather than hangs.
                        tracing::error!(
                            "FUSE over io_uring: queue {cpu} failed: {e}; ending the mount"
                        );
                        std::process::exit(1);
                    }
                    served
                })?,
        );
    }
    Ok(threads)
}

/// Tells the kernel that no ring will come (a registration it refuses), so that it serves
/// through /dev/fuse the requests it holds back until every queue has registered.
fn fall_back<FS: Filesystem>(dispatcher: &Dispatcher<FS>) -> io::Result<()> {
    let mut queue = Queue::new(0, 1, 0)?;
    queue.enable()?;
    queue.register_refused(dispatcher.device())?;
    let mut done = Vec::new();
    while done.is_empty() {
        queue.submit_and_wait()?;
        queue.completions(&mut done);
    }
    Ok(())
}

/// The CPUs the kernel may run a caller on (`/sys/devices/system/cpu/possible`, "0-3,8-11"):
/// the kernel makes as many queues, numbered from 0.
fn possible_cpus() -> io::Result<Vec<usize>> {
    let list = std::fs::read_to_string("/sys/devices/system/cpu/possible")?;
    parse_cpu_list(list.trim()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("cannot read the list of CPUs {list:?}"),
        )
    })
}

fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for range in list.split(',') {
        let (first, last): (usize, usize) = match range.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let cpu = range.parse().ok()?;
                (cpu, cpu)
            }
        };
        if first > last {
            return None;
        }
        cpus.extend(first..=last);
    }
    Some(cpus)
}

/// Runs this thread on `cpu` only, where the kernel queues that CPU's requests; a refusal (a
/// cpuset without it) costs speed only.
fn pin_to(cpu: usize) {
    let mut set = nix::sched::CpuSet::new();
    if set.set(cpu).is_ok() {
        if let Err(e) = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set) {
            tracing::debug!("cannot pin the io_uring queue thread to CPU {cpu}: {e}");
        }
    }
}

/// EAGAINs to a registration that are waited out (10 ms each) before the entry is given up.
const MAX_REGISTER_RETRIES: u32 = 500;

fn serve_queue<FS: Filesystem>(
    mut queue: Queue,
    dispatcher: &Dispatcher<FS>,
    cpu: usize,
    refused: &AtomicBool,
) -> io::Result<()> {
    pin_to(cpu);
    let device = dispatcher.device();
    let reply = Arc::new(QueueReply::default());
    let mut registered = queue.entries();
    let mut retries = 0;
    let mut done = Vec::new();
    if let Err(e) = queue.enable().and_then(|()| queue.register_all(device)) {
        tracing::warn!("cannot register io_uring queue {cpu}: {e}; serving through /dev/fuse");
        return fall_back(dispatcher);
    }
    while registered > 0 {
        queue.submit_and_wait()?;
        done.clear();
        queue.completions(&mut done);
        for &(index, result) in &done {
            if result == -libc::EAGAIN && retries < MAX_REGISTER_RETRIES {
                // The connection is not initialized yet: the kernel answers EAGAIN and keeps
                // waiting for the ring, so the entry must be registered again.
                retries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
                queue.register(device, index)?;
            } else if result < 0 {
                // The entry is no longer registered: the connection ended (ENOTCONN), the ring
                // is closing (ECANCELED), or the kernel refused it.
                registered -= 1;
                let errno = -result;
                if errno != libc::ENOTCONN
                    && errno != libc::ECANCELED
                    && !refused.swap(true, Ordering::Relaxed)
                {
                    // Said once for the mount (every queue is refused alike).
                    tracing::warn!(
                        "FUSE over io_uring: the kernel refused the registration: {}; serving through \
                         /dev/fuse",
                        io::Error::from_raw_os_error(errno)
                    );
                    // Some refusals leave the kernel waiting for the ring: make sure it stops.
                    fall_back(dispatcher)?;
                }
            } else {
                serve_one(&mut queue, dispatcher, &reply, index)?;
            }
        }
    }
    Ok(())
}

/// Hands entry `index`'s request to the filesystem and queues the commit of its reply.
fn serve_one<FS: Filesystem>(
    queue: &mut Queue,
    dispatcher: &Dispatcher<FS>,
    reply: &Arc<QueueReply>,
    index: usize,
) -> io::Result<()> {
    let window = queue.open_window(index, &reply.window);
    let (unique, commit_id) = match queue.request(index) {
        Ok(request) => {
            let transport: Arc<dyn ReplyTransport> = reply.clone();
            if let Err(e) = dispatcher.dispatch(request.message, transport) {
                tracing::warn!("FUSE over io_uring: request {}: {e}", request.unique);
            }
            (request.unique, request.commit_id)
        }
        Err(malformed) => {
            tracing::warn!(
                "FUSE over io_uring: request {} has lengths that do not add up",
                malformed.unique
            );
            (malformed.unique, malformed.commit_id)
        }
    };
    let device = dispatcher.device();
    if let Some(window) = window {
        if queue.commit_window(device, index, commit_id, window)? {
            return Ok(());
        }
    }
    let mut staged = reply.staged.take();
    if reply_unique(&staged) != Some(unique) {
        // Every operation answers before it returns; a request without an answer (or with
        // another request's) gets EIO rather than hanging its caller.
        if !staged.is_empty() {
            tracing::error!("FUSE over io_uring: a reply did not match request {unique}");
        }
        error_reply(&mut staged, unique, libc::EIO);
    }
    if let Err(e) = queue.commit(device, index, commit_id, &staged) {
        tracing::error!("FUSE over io_uring: cannot send the reply to request {unique}: {e}");
        error_reply(&mut staged, unique, libc::EIO);
        queue.commit(device, index, commit_id, &staged)?;
    }
    reply.staged.recycle(staged);
    Ok(())
}

/// The `unique` a reply answers (in its `fuse_out_header`).
fn reply_unique(reply: &[u8]) -> Option<u64> {
    let bytes = reply.get(8..OUT_HEADER_SIZE)?;
    Some(u64::from_ne_bytes(bytes.try_into().ok()?))
}

/// Overwrites `reply` with an error answer to `unique`.
fn error_reply(reply: &mut Vec<u8>, unique: u64, errno: i32) {
    reply.clear();
    reply.extend_from_slice(&(OUT_HEADER_SIZE as u32).to_ne_bytes());
    reply.extend_from_slice(&(-errno).to_ne_bytes());
    reply.extend_from_slice(&unique.to_ne_bytes());
}

/// Where fuser sends a queue thread's replies: straight into the entry through its window when
/// the request left the payload buffer free (no payload: reads, listings, attributes), or else
/// staged (the request's bytes are still borrowed from the buffer the reply goes to) and copied
/// into the entry once the operation returns.
#[derive(Debug, Default)]
struct QueueReply {
    window: ReplyWindow,
    staged: StagedReply,
}

impl ReplyTransport for QueueReply {
    fn send(&self, data: &[IoSlice<'_>]) -> io::Result<()> {
        if self.window.write(data)? {
            return Ok(());
        }
        self.staged.send(data)
    }
}

/// A reply kept until the operation returns; its buffer is reused from request to request.
#[derive(Debug, Default)]
struct StagedReply(Mutex<Vec<u8>>);

impl StagedReply {
    fn send(&self, data: &[IoSlice<'_>]) -> io::Result<()> {
        let mut staged = self.0.lock().unwrap_or_else(|e| e.into_inner());
        staged.clear();
        for slice in data {
            staged.extend_from_slice(slice);
        }
        Ok(())
    }

    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn recycle(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = buffer;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("0-1"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0-1,4,6-7"), Some(vec![0, 1, 4, 6, 7]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn error_replies_answer_their_request() {
        let mut reply = b"leftover".to_vec();
        error_reply(&mut reply, 99, libc::EIO);
        assert_eq!(reply.len(), OUT_HEADER_SIZE);
        assert_eq!(reply_unique(&reply), Some(99));
        assert_eq!(&reply[4..8], &(-libc::EIO).to_ne_bytes());
        assert_eq!(reply_unique(b"short"), None);
    }

    #[test]
    fn a_staged_reply_is_whole_and_its_buffer_reused() {
        let staged = StagedReply::default();
        staged
            .send(&[IoSlice::new(b"head"), IoSlice::new(b"er+args")])
            .unwrap();
        let reply = staged.take();
        assert_eq!(reply, b"header+args");
        let capacity = reply.capacity();
        staged.recycle(reply);
        assert!(staged.take().is_empty());
        staged.recycle(Vec::with_capacity(capacity));
        staged.send(&[IoSlice::new(b"x")]).unwrap();
        assert_eq!(staged.take(), b"x");
    }
}
