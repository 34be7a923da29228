//! Where rendered bytes go: a writer thread of its own, so that a blocked
//! output (a pipe nobody reads, a FIFO nobody opened) never blocks the
//! run: a signal still ends it, and what could not be written is counted.
//!
//! The renderer hands over whole buffers; at most `QUEUE` of them wait
//! for the writer, so the memory between renderer and output is bounded.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

/// What receives the renderer's full buffers.
pub trait Out {
    /// Take `buf` (holding `events` events) and leave an empty buffer in
    /// its place. An error ends the output (a closed pipe, a full disk).
    fn hand_over(&mut self, buf: &mut Vec<u8>, events: u64) -> io::Result<()>;

    /// The output was given up on (it did not move while the run was
    /// being stopped): rendering more is pointless.
    fn abandoned(&self) -> bool {
        false
    }
}

impl<W: Write> Out for W {
    fn hand_over(&mut self, buf: &mut Vec<u8>, _events: u64) -> io::Result<()> {
        let r = self.write_all(buf).and_then(|_| self.flush());
        buf.clear();
        r
    }
}

/// Buffers waiting for the writer.
const QUEUE: usize = 8;

/// Where the output goes.
pub enum Target {
    /// An open file (stdout, a regular file, a FIFO with a reader).
    File(File),
    /// A FIFO that had no reader yet: opened by the writer thread, which
    /// may wait there for one.
    Fifo(PathBuf),
}

impl Target {
    /// Stdout as a plain file: our own buffers do the batching.
    pub fn stdout() -> io::Result<Target> {
        let fd = unsafe { libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Target::File(unsafe { File::from_raw_fd(fd) }))
    }

    /// `-o PATH`: created (or truncated) without waiting, so that a FIFO
    /// without a reader does not hold the run before it starts.
    pub fn path(path: PathBuf) -> io::Result<Target> {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(f) => {
                // Writes block as usual (in the writer thread).
                let fd = f.as_raw_fd();
                unsafe {
                    let fl = libc::fcntl(fd, libc::F_GETFL);
                    libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
                }
                Ok(Target::File(f))
            }
            // A FIFO nobody reads yet.
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(Target::Fifo(path)),
            Err(e) => Err(e),
        }
    }
}

struct Chunk {
    bytes: Vec<u8>,
    events: u64,
}

#[derive(Default)]
struct Shared {
    error: Mutex<Option<io::Error>>,
    failed: AtomicBool,
    written_events: AtomicU64,
    done: AtomicBool,
}

/// The writer thread and the queue to it.
pub struct Output {
    tx: Option<Sender<Chunk>>,
    free: Receiver<Vec<u8>>,
    shared: Arc<Shared>,
    handle: Option<JoinHandle<()>>,
    handed_events: u64,
    /// Events in buffers dropped because the output stayed blocked past
    /// the end of the run.
    pub dropped_events: u64,
    /// Whether to give up waiting for room in the queue (the run is
    /// ending and the output does not move).
    give_up: fn() -> bool,
    /// Since when the output has not moved while `give_up` said so.
    stalled_since: Option<Instant>,
    abandoned: bool,
}

impl Output {
    pub fn start(target: Target, give_up: fn() -> bool) -> io::Result<Output> {
        let (tx, rx) = crossbeam_channel::bounded::<Chunk>(QUEUE);
        let (free_tx, free) = crossbeam_channel::bounded::<Vec<u8>>(QUEUE);
        let shared = Arc::new(Shared::default());
        let sh = shared.clone();
        let handle = std::thread::Builder::new()
            .name("output".into())
            .spawn(move || writer(target, rx, free_tx, &sh))?;
        Ok(Output {
            tx: Some(tx),
            free,
            shared,
            handle: Some(handle),
            handed_events: 0,
            dropped_events: 0,
            give_up,
            stalled_since: None,
            abandoned: false,
        })
    }

    /// The first write error, once.
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.shared.error.lock().ok()?.take()
    }

    pub fn failed(&self) -> bool {
        self.shared.failed.load(Ordering::Acquire)
    }

    /// Let the writer finish what it holds, until `give_up` says stop.
    /// Then what is left is counted as dropped and the writer is abandoned
    /// (blocked in a write or an open, it ends with the process).
    pub fn finish(&mut self, give_up: impl Fn() -> bool) {
        self.tx = None;
        while !self.shared.done.load(Ordering::Acquire) && !give_up() {
            std::thread::sleep(Duration::from_millis(5));
        }
        if self.shared.done.load(Ordering::Acquire) {
            if let Some(h) = self.handle.take() {
                let _ = h.join();
            }
        }
        let written = self.shared.written_events.load(Ordering::Acquire);
        if !self.failed() {
            self.dropped_events += self.handed_events.saturating_sub(written);
        }
        self.handed_events = written;
    }
}

impl Out for Output {
    fn abandoned(&self) -> bool {
        self.abandoned
    }

    fn hand_over(&mut self, buf: &mut Vec<u8>, events: u64) -> io::Result<()> {
        if self.abandoned {
            self.dropped_events += events;
            buf.clear();
            return Ok(());
        }
        if self.failed() {
            buf.clear();
            return Err(self
                .take_error()
                .unwrap_or_else(|| io::Error::other("output failed")));
        }
        let Some(tx) = &self.tx else {
            buf.clear();
            return Ok(());
        };
        let next = self.free.try_recv().unwrap_or_default();
        let mut chunk = Chunk {
            bytes: std::mem::replace(buf, next),
            events,
        };
        loop {
            match tx.send_timeout(chunk, Duration::from_millis(20)) {
                Ok(()) => {
                    self.handed_events += events;
                    return Ok(());
                }
                Err(crossbeam_channel::SendTimeoutError::Timeout(back)) => {
                    chunk = back;
                    // The output does not take more and the run is ending:
                    // give it a little while, then drop and count.
                    if (self.give_up)() {
                        let t = *self.stalled_since.get_or_insert_with(Instant::now);
                        if t.elapsed() > Duration::from_millis(150) {
                            self.dropped_events += events;
                            self.abandoned = true;
                            return Ok(());
                        }
                    }
                }
                Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => {
                    return Err(self
                        .take_error()
                        .unwrap_or_else(|| io::Error::other("output writer ended")));
                }
            }
        }
    }
}

fn writer(target: Target, rx: Receiver<Chunk>, free: Sender<Vec<u8>>, sh: &Shared) {
    let fail = |e: io::Error| {
        if let Ok(mut g) = sh.error.lock() {
            g.get_or_insert(e);
        }
        sh.failed.store(true, Ordering::Release);
    };
    let file = match target {
        Target::File(f) => Some(f),
        Target::Fifo(p) => match std::fs::OpenOptions::new().write(true).open(&p) {
            Ok(f) => Some(f),
            Err(e) => {
                fail(io::Error::new(e.kind(), format!("{}: {e}", p.display())));
                None
            }
        },
    };
    for mut chunk in rx {
        if let Some(mut f) = file.as_ref().filter(|_| !sh.failed.load(Ordering::Acquire)) {
            match write_all(&mut f, &chunk.bytes) {
                Ok(()) => {
                    sh.written_events.fetch_add(chunk.events, Ordering::AcqRel);
                }
                Err(e) => fail(e),
            }
        }
        chunk.bytes.clear();
        let _ = free.try_send(chunk.bytes);
    }
    sh.done.store(true, Ordering::Release);
}

/// write_all that also waits out a non-blocking descriptor (a stdout
/// shared with a process that set O_NONBLOCK on it).
fn write_all(f: &mut &File, mut b: &[u8]) -> io::Result<()> {
    while !b.is_empty() {
        match f.write(b) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => b = &b[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut p = libc::pollfd {
                    fd: f.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                unsafe { libc::poll(&mut p, 1, 100) };
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
