//! One thread per CPU reading `per_cpu/cpuN/trace_pipe_raw`.
//!
//! Each read(2) hands over one whole sub-buffer. The reader reads until
//! the CPU's buffer is empty, indexes the records of what it got (the
//! timestamps the merge needs, and the pages' lost-event flags), and
//! sends the batch on. Then it waits for data with poll(2) and lets a
//! little more accumulate, so that at high rates each wake-up moves many
//! pages, not a few records.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::page::{Missed, PageLayout};

/// What a batch holds, in the CPU's record order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// A record: payload at `buf[start..start + len]`; with `-s`, the
    /// kernel_stack record that followed it (`stack_len` 0: none).
    Event {
        ts: u64,
        start: u32,
        len: u32,
        stack_start: u32,
        stack_len: u32,
    },
    /// The kernel lost records before this point (count when it knows).
    Lost { ts: u64, count: Option<u64> },
}

impl Item {
    pub fn ts(&self) -> u64 {
        match *self {
            Item::Event { ts, .. } | Item::Lost { ts, .. } => ts,
        }
    }
}

/// Whole pages read from one CPU, with their records indexed.
pub struct Batch {
    /// Position of the CPU in the run's CPU list.
    pub slot: usize,
    pub cpu: u32,
    pub buf: Vec<u8>,
    pub items: Vec<Item>,
    pub arrival: Instant,
}

pub enum Msg {
    Batch(Batch),
    /// A page that cannot be decoded; the rest of the stream goes on.
    Corrupt {
        cpu: u32,
        what: String,
    },
    /// The reader has drained its CPU after the stop and ended.
    Done {
        slot: usize,
        error: Option<String>,
    },
}

/// Batch buffers of one CPU: a fixed number in circulation, so that what
/// a CPU's events hold in memory between the kernel and the output is
/// bounded in bytes. When the merge is behind, the reader waits for a
/// buffer to come back, the kernel's ring buffer fills, and the kernel
/// counts what it cannot keep (reported as lost).
pub struct Pool {
    free_tx: Sender<(Vec<u8>, Vec<Item>)>,
    free_rx: Receiver<(Vec<u8>, Vec<Item>)>,
    /// Buffers not made yet.
    unmade: std::sync::atomic::AtomicUsize,
}

impl Pool {
    pub fn new(buffers: usize) -> Pool {
        let (free_tx, free_rx) = crossbeam_channel::bounded(buffers.max(1));
        Pool {
            free_tx,
            free_rx,
            unmade: std::sync::atomic::AtomicUsize::new(buffers.max(1)),
        }
    }

    /// A batch's buffers, given back once its records are out.
    pub fn give_back(&self, mut buf: Vec<u8>, mut items: Vec<Item>) {
        buf.clear();
        items.clear();
        let _ = self.free_tx.try_send((buf, items));
    }

    /// A free buffer: a recycled one, a new one while the budget allows,
    /// else wait (None once `give_up` says so).
    fn take(&self, give_up: &dyn Fn() -> bool) -> Option<(Vec<u8>, Vec<Item>)> {
        if let Ok(b) = self.free_rx.try_recv() {
            return Some(b);
        }
        let made = self
            .unmade
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        if made.is_ok() {
            return Some((Vec::new(), Vec::new()));
        }
        loop {
            match self.free_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(b) => return Some(b),
                Err(_) if give_up() => return None,
                Err(_) => {}
            }
        }
    }
}

/// What a CPU's reader shares with the merge and with teardown.
pub struct Cpu {
    pub slot: usize,
    pub cpu: u32,
    pub path: PathBuf,
    file: File,
    /// Set while the reader has read records it has not sent yet: then
    /// an empty CPU buffer does not mean all of its records are out.
    busy: AtomicBool,
    pub pool: Pool,
    /// Events read from the kernel but never sent, because the run was
    /// aborted: counted so that the run can say how many it did not write.
    unsent: AtomicU64,
}

impl Cpu {
    /// Open a CPU's `trace_pipe_raw` non-blocking (so a stop is never
    /// stuck in a read), with a pool of `buffers` batch buffers.
    pub fn open(slot: usize, cpu: u32, path: PathBuf, buffers: usize) -> io::Result<Cpu> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)?;
        lock_fds().push(file.as_raw_fd());
        Ok(Cpu {
            slot,
            cpu,
            path,
            file,
            busy: AtomicBool::new(false),
            unsent: AtomicU64::new(0),
            pool: Pool::new(buffers),
        })
    }

    /// Whether everything this CPU had recorded before this call has been
    /// sent to the merge: its buffer is empty and its reader holds no
    /// unsent records. The caller receives what was sent after calling.
    pub fn drained(&self) -> bool {
        let mut p = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let r = unsafe { libc::poll(&mut p, 1, 0) };
        // The order matters: a reader that emptied the buffer before the
        // poll is still busy until its batch is in the channel.
        r == 0 && !self.busy.load(Ordering::SeqCst)
    }

    /// Events its reader read and then dropped on an abort.
    pub fn unsent(&self) -> u64 {
        self.unsent.load(Ordering::Acquire)
    }

    fn drop_unsent(&self, b: Option<&Batch>) {
        if let Some(b) = b {
            let n = b
                .items
                .iter()
                .filter(|it| matches!(it, Item::Event { .. }))
                .count();
            self.unsent.fetch_add(n as u64, Ordering::AcqRel);
        }
    }
}

impl Drop for Cpu {
    fn drop(&mut self) {
        // Forget the fd before it is closed (and its number reused).
        let fd = self.file.as_raw_fd();
        lock_fds().retain(|&f| f != fd);
    }
}

/// The open `trace_pipe_raw` files of the process.
static READER_FDS: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());
/// Set once the reader files have been replaced by /dev/null.
static NEUTRALISED: AtomicBool = AtomicBool::new(false);

fn lock_fds() -> std::sync::MutexGuard<'static, Vec<RawFd>> {
    READER_FDS.lock().unwrap_or_else(|e| e.into_inner())
}

/// For a panic hook about to tear down: make every reader's file
/// /dev/null (dup2 keeps the fd numbers, so no thread can use a reused
/// one), so that the kernel lets the instance go; readers then end.
pub fn neutralise_all() {
    let fds = match READER_FDS.try_lock() {
        Ok(g) => g.clone(),
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().clone(),
        Err(std::sync::TryLockError::WouldBlock) => return,
    };
    NEUTRALISED.store(true, Ordering::SeqCst);
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if null < 0 {
        return;
    }
    for fd in fds {
        unsafe { libc::dup2(null, fd) };
    }
    unsafe { libc::close(null) };
}

#[derive(Clone, Debug)]
pub struct ReaderConfig {
    pub layout: PageLayout,
    /// `per_cpu/cpuN/stats`: where a loss the page could not count is
    /// counted (the kernel's overrun counters).
    pub stats: Option<PathBuf>,
    /// The id of `ftrace/kernel_stack` when stacks are wanted: such a
    /// record is joined to the event right before it (same CPU, same
    /// pid), which is the one whose trigger recorded it.
    pub stack_id: Option<u16>,
    /// Most pages per batch.
    pub batch_pages: usize,
    /// After a wake-up, wait this long for more data before reading.
    pub gather: Duration,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            layout: PageLayout::X86_64_4K,
            stats: None,
            stack_id: None,
            batch_pages: 64,
            gather: Duration::from_millis(2),
        }
    }
}

/// Index one batch buffer's pages: `pages` sub-buffers of the layout's size.
pub fn index_pages(
    layout: &PageLayout,
    stack_id: Option<u16>,
    buf: &[u8],
    items: &mut Vec<Item>,
) -> Result<(), String> {
    index_pages_lead(layout, stack_id, buf, items, &mut None)
}

/// [`index_pages`], and in `lead` a kernel_stack record (start, len) that
/// comes first in the batch, before any other record or loss: the stack
/// of the last event of the batch before (the trigger records it just
/// after its event, and a read can fall between the two).
pub fn index_pages_lead(
    layout: &PageLayout,
    stack_id: Option<u16>,
    buf: &[u8],
    items: &mut Vec<Item>,
    lead: &mut Option<(u32, u32)>,
) -> Result<(), String> {
    let mut first_err = None;
    let mut first = true;
    // The last event pushed, while a stack may still join it.
    let mut open: Option<usize> = None;
    for (i, bytes) in buf.chunks(layout.subbuf_size).enumerate() {
        let base = i * layout.subbuf_size;
        let page = match layout.page(bytes) {
            Ok(p) => p,
            Err(e) => {
                first_err.get_or_insert(e.to_string());
                continue;
            }
        };
        if page.missed != Missed::None {
            // Records are missing before this page: a stack here may
            // belong to one of them, not to the last event we have.
            open = None;
        }
        match page.missed {
            Missed::None => {}
            Missed::Unknown => items.push(Item::Lost {
                ts: page.timestamp,
                count: None,
            }),
            Missed::Count(n) => items.push(Item::Lost {
                ts: page.timestamp,
                count: Some(n),
            }),
        }
        for r in page.records() {
            match r {
                Ok(r) => {
                    let start =
                        (r.payload.as_ptr() as usize - bytes.as_ptr() as usize + base) as u32;
                    let len = r.payload.len() as u32;
                    if stack_id.is_some() && super::common_type(r.payload) == stack_id {
                        if first && items.is_empty() {
                            *lead = Some((start, len));
                        }
                        first = false;
                        if let Some(Item::Event {
                            start: es,
                            stack_start,
                            stack_len,
                            ..
                        }) = open.take().and_then(|i| items.get_mut(i))
                        {
                            let pid = |at: u32| buf.get(at as usize + 4..at as usize + 8);
                            if pid(*es) == pid(start) {
                                *stack_start = start;
                                *stack_len = len;
                            }
                        }
                        continue;
                    }
                    first = false;
                    open = Some(items.len());
                    items.push(Item::Event {
                        ts: r.ts,
                        start,
                        len,
                        stack_start: 0,
                        stack_len: 0,
                    });
                }
                Err(e) => {
                    first_err.get_or_insert(e.to_string());
                }
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Reader states, shared by all readers of a run.
pub const RUN: u8 = 0;
/// Recording has stopped: read what is left, then end.
pub const DRAIN: u8 = 1;
/// End now (an error or panic elsewhere): what is left is not wanted.
pub const ABORT: u8 = 2;

/// Start the reader of one CPU. It ends once `state` is DRAIN and its
/// buffer is empty, or at once on ABORT, always sending `Done` last.
pub fn spawn(
    cpus: Arc<Vec<Cpu>>,
    index: usize,
    cfg: ReaderConfig,
    stop: Arc<AtomicU8>,
    tx: Sender<Msg>,
) -> io::Result<JoinHandle<()>> {
    let name = format!("cpu{}", cpus[index].cpu);
    std::thread::Builder::new().name(name).spawn(move || {
        let me = &cpus[index];
        let error = run(me, &cfg, &stop, &tx)
            .err()
            .map(|e| format!("{}: {e}", me.path.display()));
        me.busy.store(false, Ordering::SeqCst);
        let mut m = Msg::Done {
            slot: me.slot,
            error,
        };
        while let Err(crossbeam_channel::SendTimeoutError::Timeout(back)) =
            tx.send_timeout(m, Duration::from_millis(50))
        {
            if stop.load(Ordering::Relaxed) == ABORT {
                break;
            }
            m = back;
        }
    })
}

fn run(me: &Cpu, cfg: &ReaderConfig, stop: &AtomicU8, tx: &Sender<Msg>) -> io::Result<()> {
    let sub = cfg.layout.subbuf_size;
    let aborted = || stop.load(Ordering::Relaxed) == ABORT || NEUTRALISED.load(Ordering::Relaxed);
    // A full channel means the merge is behind: wait, unless told to end.
    // What it cannot send is counted as unsent.
    let send = |m: Msg| -> bool {
        let mut m = m;
        loop {
            match tx.send_timeout(m, Duration::from_millis(50)) {
                Ok(()) => return true,
                Err(crossbeam_channel::SendTimeoutError::Timeout(back)) => {
                    if aborted() {
                        if let Msg::Batch(b) = &back {
                            me.drop_unsent(Some(b));
                        }
                        return false;
                    }
                    m = back;
                }
                Err(crossbeam_channel::SendTimeoutError::Disconnected(back)) => {
                    if let Msg::Batch(b) = &back {
                        me.drop_unsent(Some(b));
                    }
                    return false;
                }
            }
        }
    };
    // Losses reported so far, to count the unknown ones from the stats.
    let mut reported = 0u64;
    // A batch whose last event may still get its stack from the next
    // read, and since when it waits.
    let mut held: Option<(Batch, Instant)> = None;
    loop {
        // Read the flag first: everything recorded before it was set is
        // read below, before we leave.
        let stopping = stop.load(Ordering::Acquire) != RUN;
        me.busy.store(true, Ordering::SeqCst);
        let Some((mut buf, mut items)) = me.pool.take(&aborted) else {
            me.drop_unsent(held.as_ref().map(|(b, _)| b));
            return Ok(());
        };
        let mut pages = 0;
        let mut empty = false;
        let mut caught_up = false;
        let mut file = &me.file;
        while pages < cfg.batch_pages {
            if aborted() {
                me.drop_unsent(held.as_ref().map(|(b, _)| b));
                // And the pages of this batch read so far.
                let mut lead = None;
                let _ = index_pages_lead(
                    &cfg.layout,
                    cfg.stack_id,
                    buf.get(..pages * sub).unwrap_or_default(),
                    &mut items,
                    &mut lead,
                );
                let n = items
                    .iter()
                    .filter(|it| matches!(it, Item::Event { .. }))
                    .count();
                me.unsent.fetch_add(n as u64, Ordering::AcqRel);
                return Ok(());
            }
            let at = pages * sub;
            buf.resize(at + sub, 0);
            match file.read(&mut buf[at..]) {
                Ok(0) => {
                    empty = true;
                    break;
                }
                Ok(_) => {
                    pages += 1;
                    // Less than half a page after the first read: this is
                    // the page the kernel is writing, copied record by
                    // record (irqs off) with what came since the last
                    // read. Reading on would take a few records per read
                    // (at 4M events/s, 4 reads per page's worth): wait for
                    // whole pages instead.
                    if pages > 1 && cfg.layout.is_partial(&buf[at..]) {
                        caught_up = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    empty = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(pages * sub);
        if pages == 0 {
            me.pool.give_back(buf, items);
            // Nothing more came: the held batch's last stack is not coming.
            if held
                .as_ref()
                .is_some_and(|(_, t)| stopping || t.elapsed() >= HOLD_FOR_STACK)
            {
                if let Some((b, _)) = held.take() {
                    if !send(Msg::Batch(b)) {
                        return Ok(());
                    }
                }
            }
        } else {
            let mut lead = None;
            if let Err(what) =
                index_pages_lead(&cfg.layout, cfg.stack_id, &buf, &mut items, &mut lead)
            {
                let _ = tx.send(Msg::Corrupt { cpu: me.cpu, what });
            }
            for it in items.iter_mut() {
                if let Item::Lost { count, .. } = it {
                    match count {
                        Some(n) => reported += *n,
                        None => {
                            // The page had no room for the count: the
                            // kernel's counters say how many since the last report.
                            let total = cfg.stats.as_deref().and_then(stats_lost);
                            if let Some(t) = total.filter(|&t| t > reported) {
                                *count = Some(t - reported);
                                reported = t;
                            }
                        }
                    }
                }
            }
            let b = Batch {
                slot: me.slot,
                cpu: me.cpu,
                buf,
                items,
                arrival: Instant::now(),
            };
            if let Some((mut h, _)) = held.take() {
                if let Some((start, len)) = lead {
                    let s = start as usize;
                    if let Some(st) = b.buf.get(s..s + len as usize) {
                        join_stack(&mut h, st);
                    }
                }
                if !send(Msg::Batch(h)) {
                    me.drop_unsent(Some(&b));
                    return Ok(());
                }
            }
            if cfg.stack_id.is_some() && stack_may_follow(&b) {
                held = Some((b, Instant::now()));
            } else if !send(Msg::Batch(b)) {
                return Ok(());
            }
        }
        me.busy.store(held.is_some(), Ordering::SeqCst);
        if empty && stopping && held.is_none() {
            return Ok(());
        }
        // Caught up while stopping: what is left is read at once (nothing
        // more is being written to wait for).
        if empty || (caught_up && !stopping) {
            wait_readable(&me.file, if held.is_some() { 2 } else { 50 });
            if stop.load(Ordering::Relaxed) == RUN && held.is_none() {
                std::thread::sleep(cfg.gather);
            }
        }
    }
}

/// How long a batch waits for the stack of its last event.
const HOLD_FOR_STACK: Duration = Duration::from_millis(10);

/// Whether the batch ends with an event that has no stack yet.
fn stack_may_follow(b: &Batch) -> bool {
    matches!(b.items.last(), Some(Item::Event { stack_len: 0, .. }))
}

/// A stack read at the start of the next batch joins the last event of
/// `b` when it is that event's task's (as [`index_pages`] joins them).
fn join_stack(b: &mut Batch, stack: &[u8]) {
    let at = b.buf.len() as u32;
    let Some(Item::Event {
        start,
        stack_start,
        stack_len,
        ..
    }) = b.items.last_mut()
    else {
        return;
    };
    let s = *start as usize;
    if b.buf.get(s + 4..s + 8) != stack.get(4..8) {
        return;
    }
    *stack_start = at;
    *stack_len = stack.len() as u32;
    b.buf.extend_from_slice(stack);
}

/// overrun + commit overrun + dropped events of a `per_cpu/cpuN/stats` file.
pub fn stats_lost(path: &std::path::Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| matches!(k.trim(), "overrun" | "commit overrun" | "dropped events"))
            .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
            .sum(),
    )
}

fn wait_readable(file: &File, timeout_ms: i32) {
    let mut p = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // An error or timeout just means: look again.
    unsafe { libc::poll(&mut p, 1, timeout_ms) };
}
