//! Putting the per-CPU streams back into one time order.
//!
//! Each CPU's records are in order; across CPUs they are not. The merge
//! emits the oldest head among the CPUs once every other CPU either has
//! a record waiting (so nothing older can still come from it), or has
//! finished, or was found drained after that record arrived: its ring
//! buffer empty and its reader holding nothing unsent (see
//! [`super::reader::Cpu::drained`]), so that anything it records later
//! is newer. Holding back is then a matter of the time a busy reader
//! needs to deliver, not a fixed delay. `delay` remains as a bound on the
//! wait when a reader cannot say (it waits for a free buffer).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::reader::{Batch, Cpu, Item, Msg};

/// What a sink says after each item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

pub trait Sink {
    fn event(&mut self, cpu: u32, ts: u64, payload: &[u8], stack: Option<&[u8]>) -> Flow;
    fn lost(&mut self, cpu: u32, ts: u64, count: Option<u64>) -> Flow;
    fn corrupt(&mut self, cpu: u32, what: &str);
    fn reader_error(&mut self, what: &str);
}

#[derive(Default)]
struct Queue {
    batches: VecDeque<Batch>,
    /// Next item in the front batch.
    pos: usize,
    done: bool,
}

impl Queue {
    fn head(&self) -> Option<(&Batch, &Item)> {
        let b = self.batches.front()?;
        Some((b, b.items.get(self.pos)?))
    }
    fn advance(&mut self, cpus: Option<&[Cpu]>) {
        self.pos += 1;
        self.skip_spent(cpus);
    }
    fn skip_spent(&mut self, cpus: Option<&[Cpu]>) {
        while let Some(b) = self.batches.front() {
            if self.pos < b.items.len() {
                break;
            }
            if let Some(b) = self.batches.pop_front() {
                recycle(cpus, b);
            }
            self.pos = 0;
        }
    }
}

/// A spent batch's buffers go back to its CPU's pool.
fn recycle(cpus: Option<&[Cpu]>, b: Batch) {
    if let Some(c) = cpus.and_then(|c| c.get(b.slot)) {
        c.pool.give_back(b.buf, b.items);
    }
}

/// Most records one [`Merger::emit`] call emits, and for how long.
const EMIT_AT_ONCE: usize = 16384;
const EMIT_FOR: Duration = Duration::from_millis(20);

pub struct Merger {
    queues: Vec<Queue>,
    delay: Duration,
    cpus: Option<Arc<Vec<Cpu>>>,
    /// Records not emitted when the run ended early ([`Merger::discard`]).
    pub discarded: u64,
}

impl Merger {
    pub fn new(slots: usize, delay: Duration) -> Merger {
        Merger {
            queues: (0..slots).map(|_| Queue::default()).collect(),
            delay,
            cpus: None,
            discarded: 0,
        }
    }

    /// A merger of live readers: spent batches go back to their pools.
    pub fn with_cpus(cpus: Arc<Vec<Cpu>>, delay: Duration) -> Merger {
        let mut m = Merger::new(cpus.len(), delay);
        m.cpus = Some(cpus);
        m
    }

    /// Slots whose queue is empty while their reader still runs: the ones
    /// that must be found drained before a held record may go.
    pub fn idle_slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.queues
            .iter()
            .enumerate()
            .filter(|(_, q)| !q.done && q.batches.is_empty())
            .map(|(i, _)| i)
    }

    pub fn feed(&mut self, msg: Msg, sink: &mut dyn Sink) {
        match msg {
            Msg::Batch(b) => {
                let cpus = self.cpus.as_deref().map(|c| c.as_slice());
                match self.queues.get_mut(b.slot) {
                    Some(q) if !b.items.is_empty() => {
                        q.batches.push_back(b);
                        q.skip_spent(cpus);
                    }
                    _ => recycle(cpus, b),
                }
            }
            Msg::Corrupt { cpu, what } => sink.corrupt(cpu, &what),
            Msg::Done { slot, error } => {
                if let Some(e) = error {
                    sink.reader_error(&e);
                }
                if let Some(q) = self.queues.get_mut(slot) {
                    q.done = true;
                }
            }
        }
    }

    /// Drop everything held (the run ended early), counting the events
    /// dropped; readers' states stay.
    pub fn discard(&mut self) {
        let cpus = self.cpus.as_deref().map(|c| c.as_slice());
        for q in &mut self.queues {
            for (i, b) in q.batches.drain(..).enumerate() {
                let from = if i == 0 { q.pos } else { 0 };
                self.discarded += b.items[from.min(b.items.len())..]
                    .iter()
                    .filter(|it| matches!(it, Item::Event { .. }))
                    .count() as u64;
                recycle(cpus, b);
            }
            q.pos = 0;
        }
    }

    /// All readers ended and everything was emitted.
    pub fn finished(&self) -> bool {
        self.queues.iter().all(|q| q.done && q.batches.is_empty())
    }

    /// Emit every record the ordering rule allows now. `drained_at`: an
    /// instant at which every slot of [`Merger::idle_slots`] was found
    /// drained (with what it had sent received since). Returns how long
    /// until the oldest held record may go regardless (None: nothing held).
    pub fn emit(
        &mut self,
        sink: &mut dyn Sink,
        drained_at: Option<Instant>,
    ) -> (Flow, Option<Duration>) {
        let now = Instant::now();
        let cpus = self.cpus.clone();
        let cpus = cpus.as_deref().map(|c| c.as_slice());
        // A bounded amount and time per call, so that the caller looks at
        // signals and the clock often, whatever the backlog and however
        // slow the sink (a loaded machine, a slow output).
        for n in 0..EMIT_AT_ONCE {
            if n % 256 == 255 && now.elapsed() >= EMIT_FOR {
                break;
            }
            let mut best: Option<(usize, u64)> = None;
            let mut all_ready = true;
            for (i, q) in self.queues.iter().enumerate() {
                match q.head() {
                    Some((_, it)) => {
                        let ts = it.ts();
                        if best.is_none_or(|(_, b)| ts < b) {
                            best = Some((i, ts));
                        }
                    }
                    None => all_ready &= q.done,
                }
            }
            let Some((i, _)) = best else {
                return (Flow::Continue, None);
            };
            let q = &mut self.queues[i];
            let Some((b, it)) = q.head() else {
                return (Flow::Continue, None);
            };
            if !all_ready && drained_at.is_none_or(|d| d <= b.arrival) {
                let age = now.saturating_duration_since(b.arrival);
                if age < self.delay {
                    return (Flow::Continue, Some(self.delay - age));
                }
            }
            let flow = match *it {
                Item::Event {
                    ts,
                    start,
                    len,
                    stack_start,
                    stack_len,
                } => {
                    let s = start as usize;
                    let stack = match stack_len {
                        0 => None,
                        n => b.buf.get(stack_start as usize..(stack_start + n) as usize),
                    };
                    match b.buf.get(s..s + len as usize) {
                        Some(p) => sink.event(b.cpu, ts, p, stack),
                        None => Flow::Continue,
                    }
                }
                Item::Lost { ts, count } => sink.lost(b.cpu, ts, count),
            };
            q.advance(cpus);
            if flow == Flow::Stop {
                return (Flow::Stop, None);
            }
        }
        (Flow::Continue, Some(Duration::ZERO))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(Vec<(u32, u64)>);
    impl Sink for Collect {
        fn event(&mut self, cpu: u32, ts: u64, _: &[u8], _: Option<&[u8]>) -> Flow {
            self.0.push((cpu, ts));
            Flow::Continue
        }
        fn lost(&mut self, cpu: u32, ts: u64, _: Option<u64>) -> Flow {
            self.0.push((cpu + 100, ts));
            Flow::Continue
        }
        fn corrupt(&mut self, _: u32, _: &str) {}
        fn reader_error(&mut self, _: &str) {}
    }

    fn batch(slot: usize, ts: &[u64], arrival: Instant) -> Msg {
        Msg::Batch(Batch {
            slot,
            cpu: slot as u32,
            buf: vec![0; 8],
            items: ts
                .iter()
                .map(|&ts| Item::Event {
                    ts,
                    start: 0,
                    len: 4,
                    stack_start: 0,
                    stack_len: 0,
                })
                .collect(),
            arrival,
        })
    }

    #[test]
    fn orders_across_cpus_and_waits_for_idle_ones() {
        let mut m = Merger::new(2, Duration::from_secs(3600));
        let mut s = Collect(vec![]);
        let now = Instant::now();
        m.feed(batch(0, &[1, 5, 9], now), &mut s);
        // CPU 1 has said nothing yet: nothing may go.
        let (_, wait) = m.emit(&mut s, None);
        assert!(s.0.is_empty() && wait.is_some());
        assert_eq!(m.idle_slots().collect::<Vec<_>>(), vec![1]);
        // Found drained before the batch arrived: still nothing.
        m.emit(&mut s, Some(now - Duration::from_millis(1)));
        assert!(s.0.is_empty());
        m.feed(batch(1, &[2, 3, 10], now), &mut s);
        m.emit(&mut s, None);
        assert_eq!(s.0, vec![(0, 1), (1, 2), (1, 3), (0, 5), (0, 9)]);
        m.feed(
            Msg::Done {
                slot: 0,
                error: None,
            },
            &mut s,
        );
        m.emit(&mut s, None);
        assert_eq!(s.0.last(), Some(&(1, 10)));
        assert!(!m.finished());
        m.feed(
            Msg::Done {
                slot: 1,
                error: None,
            },
            &mut s,
        );
        assert!(m.finished());
    }

    #[test]
    fn delay_bounds_the_wait() {
        let mut m = Merger::new(2, Duration::from_millis(0));
        let mut s = Collect(vec![]);
        m.feed(batch(0, &[7, 8], Instant::now()), &mut s);
        m.emit(&mut s, None);
        assert_eq!(s.0, vec![(0, 7), (0, 8)]);
    }

    /// An idle CPU found drained after a record arrived lets it go at
    /// once: no fixed hold-back.
    #[test]
    fn a_drained_cpu_holds_nothing_back() {
        let mut m = Merger::new(2, Duration::from_secs(3600));
        let mut s = Collect(vec![]);
        let arrival = Instant::now();
        m.feed(batch(0, &[7, 8], arrival), &mut s);
        let (_, wait) = m.emit(&mut s, Some(arrival + Duration::from_micros(1)));
        assert_eq!(s.0, vec![(0, 7), (0, 8)]);
        assert_eq!(wait, None);
        m.feed(batch(0, &[9], Instant::now()), &mut s);
        m.discard();
        assert_eq!(m.discarded, 1);
    }
}
