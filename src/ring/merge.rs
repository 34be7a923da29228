//! Putting the per-CPU streams back into one time order.
//!
//! Each CPU's records are in order; across CPUs they are not. The merge
//! emits the oldest head among the CPUs once every CPU either has a
//! record waiting (so nothing older can still come from it) or has
//! finished, or once that record has waited `delay`: a bound on how long
//! an idle CPU can hold the output back. Readers deliver within a few
//! milliseconds, so a delay of tens of milliseconds keeps the order.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::reader::{Batch, Item, Msg};

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
    fn advance(&mut self) {
        self.pos += 1;
        self.skip_spent();
    }
    fn skip_spent(&mut self) {
        while let Some(b) = self.batches.front() {
            if self.pos < b.items.len() {
                break;
            }
            self.batches.pop_front();
            self.pos = 0;
        }
    }
}

pub struct Merger {
    queues: Vec<Queue>,
    delay: Duration,
}

impl Merger {
    pub fn new(slots: usize, delay: Duration) -> Merger {
        Merger {
            queues: (0..slots).map(|_| Queue::default()).collect(),
            delay,
        }
    }

    pub fn feed(&mut self, msg: Msg, sink: &mut dyn Sink) {
        match msg {
            Msg::Batch(b) => {
                if let Some(q) = self.queues.get_mut(b.slot) {
                    if !b.items.is_empty() {
                        q.batches.push_back(b);
                        q.skip_spent();
                    }
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

    /// Drop everything held (the run ended early); readers' states stay.
    pub fn discard(&mut self) {
        for q in &mut self.queues {
            q.batches.clear();
            q.pos = 0;
        }
    }

    /// All readers ended and everything was emitted.
    pub fn finished(&self) -> bool {
        self.queues.iter().all(|q| q.done && q.batches.is_empty())
    }

    /// Emit every record the ordering rule allows now. Returns how long
    /// until the oldest held record may go regardless (None: nothing held).
    pub fn emit(&mut self, sink: &mut dyn Sink) -> (Flow, Option<Duration>) {
        let now = Instant::now();
        loop {
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
            if !all_ready {
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
            q.advance();
            if flow == Flow::Stop {
                return (Flow::Stop, None);
            }
        }
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
        let (_, wait) = m.emit(&mut s);
        assert!(s.0.is_empty() && wait.is_some());
        m.feed(batch(1, &[2, 3, 10], now), &mut s);
        m.emit(&mut s);
        assert_eq!(s.0, vec![(0, 1), (1, 2), (1, 3), (0, 5), (0, 9)]);
        m.feed(
            Msg::Done {
                slot: 0,
                error: None,
            },
            &mut s,
        );
        m.emit(&mut s);
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
        m.emit(&mut s);
        assert_eq!(s.0, vec![(0, 7), (0, 8)]);
    }
}
