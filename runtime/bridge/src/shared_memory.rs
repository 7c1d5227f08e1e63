//! Shared-memory slots: on Linux the collector passes the bridge a few memfds
//! at spawn, and a batch's bytes travel in one of them instead of in gRPC
//! DATA frames (which cost two copies and a frame per 16 KiB each way).
//!
//! A slot is a memfd sealed against shrinking (so a mapping of its size can
//! never fault): a 64-byte header whose first word is the slot's state, then
//! the payload. The parent writes the input, sets the state to
//! `ticket << 2 | BUSY` and names slot, size, ticket and length in the RPC.
//! The bridge copies the input out, runs the batch, and writes a `replaced`
//! output back only after moving the state from `BUSY` to `WRITING` for the
//! same ticket; the parent moves it to `ABANDONED` when it gives up on a call
//! (deadline, cancellation), so a late output can never land in a slot that
//! already carries the next batch.

use std::fs::File;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use memmap2::{MmapOptions, MmapRaw};
use wasmtel_runtime::Cancel;

/// Bytes before a slot's payload; its first 8 are the state word.
pub const HEADER_LEN: usize = 64;
/// State of a slot holding a batch the bridge has not answered yet.
pub const BUSY: u64 = 1;
/// State while the bridge writes an output into the slot.
pub const WRITING: u64 = 2;
/// State the parent sets when it stops waiting for the call.
pub const ABANDONED: u64 = 3;
/// State once the bridge wrote its output (low bits 0).
pub const DONE: u64 = 0;

/// Why a slot could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    /// A descriptor given at start is not a usable memfd.
    #[error("shared-memory descriptor {fd}: {message}")]
    Descriptor {
        /// The descriptor number.
        fd: RawFd,
        /// What is wrong with it.
        message: String,
    },
    /// A request names a slot, size or length that does not fit.
    #[error("shared-memory slot {slot}: {message}")]
    Request {
        /// The slot as the request numbers it (1-based).
        slot: u32,
        /// What does not fit.
        message: String,
    },
    /// Mapping the slot failed.
    #[error("shared-memory slot {slot}: mapping {size} bytes: {source}")]
    Map {
        /// The slot as the request numbers it (1-based).
        slot: u32,
        /// The size asked for.
        size: u64,
        /// The system's error.
        source: std::io::Error,
    },
}

/// The slots the parent passed at spawn, numbered from 1 in requests.
#[derive(Default)]
pub struct Slots {
    slots: Vec<Arc<Slot>>,
}

struct Slot {
    file: File,
    /// The newest mapping; a request keeps the one it started with alive
    /// while a later one (of a larger size) replaces it.
    mapping: Mutex<Option<Arc<MmapRaw>>>,
    /// The buffer the last input was copied into, kept for the next one: a
    /// fresh allocation of a batch's size costs a map and page faults.
    spare_input: Mutex<Vec<u8>>,
}

/// The largest input buffer a slot keeps between batches.
const SPARE_INPUT_MAX: usize = 4 << 20;

/// A slot as one request uses it.
pub struct SlotLease {
    slot: Arc<Slot>,
    mapping: Arc<MmapRaw>,
    /// The slot's size as the parent has it mapped: nothing beyond is
    /// read or written (the mapping here may be larger).
    size: usize,
    ticket: u64,
}

impl Slots {
    /// Adopts the memfds the parent passed at spawn (`--shared-slot-fds
    /// 3,4,5`); each must be sealed against shrinking, since a mapping of a
    /// shrunk file would fault on access. Only the first call adopts anything.
    pub fn inherited(fds: &[RawFd]) -> Result<Slots, SlotError> {
        static ADOPTED: AtomicBool = AtomicBool::new(false);
        if fds.is_empty() {
            return Ok(Slots::default());
        }
        if ADOPTED.swap(true, Ordering::SeqCst) {
            return Err(SlotError::Descriptor {
                fd: fds[0],
                message: "shared-memory slots were adopted already".into(),
            });
        }
        let mut slots = Vec::with_capacity(fds.len());
        for (i, &fd) in fds.iter().enumerate() {
            if fds[..i].contains(&fd) {
                return Err(SlotError::Descriptor { fd, message: "named twice".into() });
            }
            check_sealed(fd)?;
            // SAFETY: a sealed memfd this process did not create: the parent's,
            // inherited at spawn. It is adopted once (ADOPTED), and nothing
            // else in this process knows its number.
            #[allow(unsafe_code)]
            let file = unsafe { File::from_raw_fd(fd) };
            slots.push(Arc::new(Slot { file, mapping: Mutex::new(None), spare_input: Mutex::default() }));
        }
        Ok(Slots { slots })
    }

    /// How many slots there are.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the parent passed none.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The slot a request names, mapped at (at least) the size the request
    /// says the parent made it.
    pub fn lease(&self, slot: u32, size: u64, ticket: u64) -> Result<SlotLease, SlotError> {
        let refuse = |message: String| SlotError::Request { slot, message };
        let entry = (slot as usize)
            .checked_sub(1)
            .and_then(|i| self.slots.get(i))
            .ok_or_else(|| refuse(format!("there are {} slots", self.slots.len())))?;
        let size_bytes = usize::try_from(size).map_err(|_| refuse(format!("size {size} does not fit")))?;
        if size_bytes < HEADER_LEN {
            return Err(refuse(format!("size {size} is smaller than the header")));
        }
        let mut current = entry.mapping.lock().unwrap_or_else(PoisonError::into_inner);
        let mapping = match current.as_ref() {
            Some(mapping) if mapping.len() >= size_bytes => Arc::clone(mapping),
            _ => {
                // Only what the file holds may be mapped: beyond its end an
                // access would fault. The seal keeps it from shrinking after.
                let file_len = entry.file.metadata().map_err(|source| SlotError::Map { slot, size, source })?.len();
                if file_len < size {
                    return Err(refuse(format!("size {size} is beyond the file's {file_len} bytes")));
                }
                let mapping = Arc::new(
                    MmapOptions::new().len(size_bytes).map_raw(&entry.file).map_err(|source| SlotError::Map {
                        slot,
                        size,
                        source,
                    })?,
                );
                *current = Some(Arc::clone(&mapping));
                mapping
            }
        };
        Ok(SlotLease { slot: Arc::clone(entry), mapping, size: size_bytes, ticket })
    }
}

impl SlotLease {
    fn state(&self) -> &AtomicU64 {
        // SAFETY: the mapping is page-aligned and at least HEADER_LEN long
        // (checked in `lease`), lives as long as self, and both processes
        // touch this word only atomically.
        #[allow(unsafe_code)]
        unsafe {
            &*self.mapping.as_ptr().cast::<AtomicU64>()
        }
    }

    /// Whether the parent gave up on this call: the state no longer says
    /// `BUSY` for its ticket.
    pub fn abandoned(&self) -> bool {
        self.state().load(Ordering::Acquire) != self.ticket << 2 | BUSY
    }

    /// How many payload bytes the slot holds.
    pub fn capacity(&self) -> usize {
        self.size - HEADER_LEN
    }

    /// A copy of the input's `len` bytes.
    ///
    /// The copy is taken before anything looks at the bytes: the parent may
    /// reuse the slot for its next batch once it abandoned this one, so the
    /// runtime must work on bytes that no other process can change.
    pub fn read_input(&self, len: u64) -> Result<Vec<u8>, String> {
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| len <= self.capacity())
            .ok_or_else(|| format!("input of {len} bytes is beyond the slot's {} payload bytes", self.capacity()))?;
        // Taken, not shared: a call abandoned earlier may still hold the last one.
        let mut input = std::mem::take(&mut *self.slot.spare_input.lock().unwrap_or_else(PoisonError::into_inner));
        input.clear();
        input.reserve(len);
        // SAFETY: HEADER_LEN + len is within the mapping (checked above), which
        // cannot fault (the file is sealed against shrinking and at least the
        // mapping's size), and `input` has room for len bytes. The source may
        // change under the copy only for an abandoned call, whose result
        // nobody reads.
        #[allow(unsafe_code)]
        unsafe {
            std::ptr::copy_nonoverlapping(self.mapping.as_ptr().add(HEADER_LEN), input.as_mut_ptr(), len);
            input.set_len(len);
        }
        Ok(input)
    }

    /// Hands the input buffer back for the slot's next batch.
    pub fn keep_input(&self, input: Vec<u8>) {
        if input.capacity() <= SPARE_INPUT_MAX {
            *self.slot.spare_input.lock().unwrap_or_else(PoisonError::into_inner) = input;
        }
    }

    /// Writes `output` into the slot if it fits and the parent still waits
    /// for this ticket. `Ok(false)`: it does not fit (send it inline);
    /// `Err`: the parent abandoned the call, and the slot is not touched.
    pub fn write_output(&self, output: &[u8]) -> Result<bool, Abandoned> {
        if output.len() > self.capacity() {
            return Ok(false);
        }
        let busy = self.ticket << 2 | BUSY;
        self.state()
            .compare_exchange(busy, self.ticket << 2 | WRITING, Ordering::AcqRel, Ordering::Acquire)
            .map_err(|_| Abandoned)?;
        // SAFETY: the output fits the mapping after the header (checked
        // above), and the parent neither reads nor writes the payload while the
        // state says WRITING for its ticket.
        #[allow(unsafe_code)]
        unsafe {
            std::ptr::copy_nonoverlapping(output.as_ptr(), self.mapping.as_mut_ptr().add(HEADER_LEN), output.len());
        }
        self.state().store(self.ticket << 2 | DONE, Ordering::Release);
        Ok(true)
    }
}

/// Refuses a descriptor that is not a memfd sealed against shrinking.
#[cfg(target_os = "linux")]
fn check_sealed(fd: RawFd) -> Result<(), SlotError> {
    let refuse = |message: String| SlotError::Descriptor { fd, message };
    // SAFETY: F_GET_SEALS only reads the descriptor's seals; an invalid one fails with EBADF.
    #[allow(unsafe_code)]
    let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
    if seals < 0 {
        return Err(refuse(format!("not a memfd: {}", std::io::Error::last_os_error())));
    }
    if seals & libc::F_SEAL_SHRINK == 0 {
        return Err(refuse("not sealed against shrinking".into()));
    }
    Ok(())
}

/// Memfd seals are Linux's: elsewhere the parent sends batches inline.
#[cfg(not(target_os = "linux"))]
fn check_sealed(fd: RawFd) -> Result<(), SlotError> {
    Err(SlotError::Descriptor { fd, message: "shared-memory slots need Linux".into() })
}

/// Cancels the calls whose parent gave up on them, read from their slots'
/// state: a call that runs on its connection's thread cannot be dropped when
/// the client resets its stream, so this is how its guest gets interrupted.
/// One thread for all slots, checking every [`wasmtel_runtime::CANCEL_CHECK`]
/// (never woken per call: that would cost the wake-up that running the batch
/// on its connection's thread saves).
#[derive(Default, Clone)]
pub struct AbandonWatch {
    watched: Arc<Mutex<Vec<Watched>>>,
    next_id: Arc<AtomicU64>,
    started: Arc<std::sync::OnceLock<()>>,
}

/// A call in flight: its ID in the watch, its slot, and its cancel handle.
type Watched = (u64, Arc<SlotLease>, Cancel);

/// Stops watching a call when dropped.
pub struct Watching {
    watch: AbandonWatch,
    id: u64,
}

impl AbandonWatch {
    /// Watches `lease` until the guard is dropped, cancelling `cancel` if
    /// the parent abandons the call.
    pub fn watch(&self, lease: Arc<SlotLease>, cancel: Cancel) -> Watching {
        self.started.get_or_init(|| {
            let watched = Arc::clone(&self.watched);
            let spawned = std::thread::Builder::new().name("wasmtel-abandon".into()).spawn(move || {
                loop {
                    for (_, lease, cancel) in watched.lock().unwrap_or_else(PoisonError::into_inner).iter() {
                        if lease.abandoned() {
                            cancel.cancel();
                        }
                    }
                    std::thread::sleep(wasmtel_runtime::CANCEL_CHECK);
                }
            });
            if let Err(error) = spawned {
                tracing::error!(%error, "no thread to watch for abandoned calls: a cancelled call runs to its deadline");
            }
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.watched.lock().unwrap_or_else(PoisonError::into_inner).push((id, lease, cancel));
        Watching { watch: self.clone(), id }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.watch.watched.lock().unwrap_or_else(PoisonError::into_inner).retain(|(id, ..)| *id != self.id);
    }
}

/// The parent stopped waiting for the call (its state is no longer `BUSY`
/// for the call's ticket).
#[derive(Debug)]
pub struct Abandoned;

/// Parses `--shared-slot-fds 3,4,5`.
pub fn parse_fds(list: &str) -> Result<Vec<RawFd>, String> {
    list.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| part.trim().parse::<RawFd>().map_err(|_| format!("not a descriptor number: {part:?}")))
        .collect()
}
