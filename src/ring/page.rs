//! Ring-buffer sub-buffers ("pages") as read from `trace_pipe_raw`.
//!
//! Layout (kernel/trace/ring_buffer.c, described by `events/header_page`):
//! a u64 base timestamp, a `local_t` commit word holding the byte length
//! of the data plus two flags in bits 31 and 30, then the data: a packed
//! run of records, each with a 32-bit header `type_len:5, time_delta:27`
//! (`events/header_event`). Everything here borrows the page's bytes.

use super::RingError;

/// Records were lost before this page (overwritten or dropped).
pub const RB_MISSED_EVENTS: u64 = 1 << 31;
/// The number of lost records is stored after the data.
pub const RB_MISSED_STORED: u64 = 1 << 30;
const RB_MISSED_MASK: u64 = RB_MISSED_EVENTS | RB_MISSED_STORED;

const TYPE_PADDING: u32 = 29;
const TYPE_TIME_EXTEND: u32 = 30;
const TYPE_TIME_STAMP: u32 = 31;
/// `time_delta` is 27 bits wide; an extend carries the bits above.
const TS_SHIFT: u32 = 27;
/// An absolute TIME_STAMP carries 59 bits; the top 5 come from the page.
const TS_MSB: u64 = 0xf8 << 56;

/// Where the page header's fields are, from `events/header_page`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageLayout {
    pub timestamp_offset: usize,
    pub commit_offset: usize,
    /// 8 on 64-bit kernels (`local_t`), 4 on 32-bit ones.
    pub commit_size: usize,
    pub data_offset: usize,
    /// The whole sub-buffer, header included.
    pub subbuf_size: usize,
}

impl PageLayout {
    /// Parse `events/header_page`; `subbuf_size` comes from
    /// `buffer_subbuf_size_kb` (or the page size on older kernels).
    pub fn parse(header_page: &str, subbuf_size: usize) -> Result<PageLayout, RingError> {
        let mut ts = None;
        let mut commit = None;
        let mut data = None;
        for line in header_page.lines() {
            let mut name = None;
            let mut off = None;
            let mut size = None;
            for part in line.split(';') {
                let part = part.trim();
                if let Some(v) = part.strip_prefix("field:") {
                    name = v.split_whitespace().last().map(|s| s.to_string());
                } else if let Some(v) = part.strip_prefix("offset:") {
                    off = v.trim().parse::<usize>().ok();
                } else if let Some(v) = part.strip_prefix("size:") {
                    size = v.trim().parse::<usize>().ok();
                }
            }
            match (name.as_deref(), off, size) {
                (Some("timestamp"), Some(o), Some(8)) => ts = Some(o),
                (Some("commit"), Some(o), Some(s)) if s == 4 || s == 8 => commit = Some((o, s)),
                (Some("data"), Some(o), _) => data = Some(o),
                _ => {}
            }
        }
        let bad = |what: &str| RingError::Format {
            what: format!("events/header_page: no usable `{what}` field"),
        };
        let timestamp_offset = ts.ok_or_else(|| bad("timestamp"))?;
        let (commit_offset, commit_size) = commit.ok_or_else(|| bad("commit"))?;
        let data_offset = data.ok_or_else(|| bad("data"))?;
        if data_offset >= subbuf_size || commit_offset + commit_size > data_offset {
            return Err(RingError::Format {
                what: format!(
                    "events/header_page: data at {data_offset} does not fit a {subbuf_size}-byte sub-buffer"
                ),
            });
        }
        Ok(PageLayout {
            timestamp_offset,
            commit_offset,
            commit_size,
            data_offset,
            subbuf_size,
        })
    }

    /// The layout of 64-bit kernels with 4 KiB sub-buffers.
    pub const X86_64_4K: PageLayout = PageLayout {
        timestamp_offset: 0,
        commit_offset: 8,
        commit_size: 8,
        data_offset: 16,
        subbuf_size: 4096,
    };

    /// Whether a page read holds less than half a page of records: most
    /// likely the page the kernel is writing, not one it filled (taking a
    /// filled page for it, with records over half a page long, only ends
    /// a reader's round early).
    pub fn is_partial(&self, bytes: &[u8]) -> bool {
        self.page(bytes)
            .is_ok_and(|p| p.data.len() < (self.subbuf_size - self.data_offset) / 2)
    }

    /// Open one page for reading. Errors on a page that cannot be one
    /// (short, or a commit length beyond the data area).
    pub fn page<'a>(&self, bytes: &'a [u8]) -> Result<Page<'a>, RingError> {
        if bytes.len() < self.data_offset {
            return Err(RingError::Corrupt {
                what: format!("page of {} bytes is shorter than its header", bytes.len()),
            });
        }
        let timestamp = read_u64(bytes, self.timestamp_offset).unwrap_or(0);
        let commit = if self.commit_size == 8 {
            read_u64(bytes, self.commit_offset).unwrap_or(0)
        } else {
            read_u32(bytes, self.commit_offset).unwrap_or(0) as u64
        };
        let flags = commit & RB_MISSED_MASK;
        let len = (commit & !RB_MISSED_MASK & 0xffff_ffff) as usize;
        let data_end = self.data_offset + len;
        if data_end > bytes.len() {
            return Err(RingError::Corrupt {
                what: format!(
                    "page commit {len} runs past the page ({} data bytes)",
                    bytes.len() - self.data_offset
                ),
            });
        }
        let data = &bytes[self.data_offset..data_end];
        let missed = if flags & RB_MISSED_EVENTS == 0 {
            Missed::None
        } else if flags & RB_MISSED_STORED != 0 {
            // The count is an `unsigned long` right after the data.
            let n = if self.commit_size == 8 {
                read_u64(bytes, data_end)
            } else {
                read_u32(bytes, data_end).map(u64::from)
            };
            n.map_or(Missed::Unknown, Missed::Count)
        } else {
            Missed::Unknown
        };
        Ok(Page {
            timestamp,
            data,
            missed,
        })
    }
}

/// Records lost between the previous page read and this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missed {
    None,
    /// The kernel flagged a loss but had no room to store the count.
    Unknown,
    Count(u64),
}

#[derive(Clone, Copy, Debug)]
pub struct Page<'a> {
    /// Base time of the page; record deltas add to it.
    pub timestamp: u64,
    /// The committed data: packed records.
    pub data: &'a [u8],
    pub missed: Missed,
}

/// One data record: its absolute timestamp and payload (the event's
/// fields, `common_type` first). The payload may carry trailing padding
/// up to 4-byte alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub ts: u64,
    pub payload: &'a [u8],
}

impl<'a> Page<'a> {
    pub fn records(&self) -> Records<'a> {
        Records {
            data: self.data,
            pos: 0,
            ts: self.timestamp,
            done: false,
        }
    }
}

/// Iterator over a page's data records. Each step consumes at least 4
/// bytes, so it ends on any input; a record that does not fit is an
/// error item, after which iteration stops.
pub struct Records<'a> {
    data: &'a [u8],
    pos: usize,
    ts: u64,
    done: bool,
}

impl<'a> Records<'a> {
    /// Timestamp after the records read so far.
    pub fn ts(&self) -> u64 {
        self.ts
    }

    fn corrupt(&mut self, what: String) -> Option<Result<Record<'a>, RingError>> {
        self.done = true;
        Some(Err(RingError::Corrupt {
            what: format!("{what} at data offset {}", self.pos),
        }))
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, RingError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let rest = &self.data[self.pos.min(self.data.len())..];
            if rest.len() < 4 {
                // Fewer than a header's bytes left: the end (alignment slack).
                self.done = true;
                return None;
            }
            let head = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let type_len = head & 0x1f;
            let delta = u64::from(head >> 5);
            match type_len {
                TYPE_PADDING => {
                    if delta == 0 {
                        // A null padding event: nothing follows on this page.
                        self.done = true;
                        return None;
                    }
                    // A discarded record: array[0] holds its length. The
                    // kernel's own reader adds no time for it.
                    let Some(len) = read_u32(rest, 4) else {
                        return self.corrupt("truncated padding record".into());
                    };
                    let total = 4 + len as usize;
                    if total < 8 || total > rest.len() {
                        return self.corrupt(format!("padding of {len} bytes does not fit"));
                    }
                    self.pos += total;
                }
                TYPE_TIME_EXTEND | TYPE_TIME_STAMP => {
                    let Some(hi) = read_u32(rest, 4) else {
                        return self.corrupt("truncated time record".into());
                    };
                    let v = (u64::from(hi) << TS_SHIFT) | delta;
                    if type_len == TYPE_TIME_EXTEND {
                        self.ts = self.ts.wrapping_add(v);
                    } else {
                        self.ts = fix_abs_ts(v, self.ts);
                    }
                    self.pos += 8;
                }
                0 => {
                    // Long record: array[0] = 4 + payload length.
                    let Some(len) = read_u32(rest, 4) else {
                        return self.corrupt("truncated record length".into());
                    };
                    let len = len as usize;
                    if len < 4 || 4 + len > rest.len() {
                        return self.corrupt(format!("record of {len} bytes does not fit"));
                    }
                    self.ts = self.ts.wrapping_add(delta);
                    self.pos += 4 + len;
                    return Some(Ok(Record {
                        ts: self.ts,
                        payload: &rest[8..4 + len],
                    }));
                }
                n => {
                    let len = n as usize * 4;
                    if 4 + len > rest.len() {
                        return self.corrupt(format!("record of {len} bytes does not fit"));
                    }
                    self.ts = self.ts.wrapping_add(delta);
                    self.pos += 4 + len;
                    return Some(Ok(Record {
                        ts: self.ts,
                        payload: &rest[4..4 + len],
                    }));
                }
            }
        }
        None
    }
}

/// An absolute stamp keeps only 59 bits; take the top bits from the
/// running time, carrying if the stamp wrapped below it (as the kernel's
/// `rb_fix_abs_ts` does).
fn fix_abs_ts(abs: u64, now: u64) -> u64 {
    if now & TS_MSB == 0 {
        return abs;
    }
    let mut v = abs | (now & TS_MSB);
    if v < now {
        v = v.wrapping_add(1 << 59);
    }
    v
}

pub fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

pub fn read_u64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_ne_bytes(a))
}

#[cfg(test)]
pub(crate) mod build {
    //! Constructing pages by hand, for the record types a live capture
    //! rarely holds.

    pub struct PageBuilder {
        pub ts: u64,
        pub data: Vec<u8>,
        pub flags: u64,
        pub stored: Option<u64>,
    }

    impl PageBuilder {
        pub fn new(ts: u64) -> PageBuilder {
            PageBuilder {
                ts,
                data: Vec::new(),
                flags: 0,
                stored: None,
            }
        }
        fn head(&mut self, type_len: u32, delta: u32) {
            self.data
                .extend_from_slice(&((delta << 5) | type_len).to_ne_bytes());
        }
        /// A data record; `payload` is padded to 4 bytes.
        pub fn event(&mut self, delta: u32, payload: &[u8]) -> &mut Self {
            let len = payload.len().div_ceil(4) * 4;
            if len <= 28 * 4 && len > 0 {
                self.head((len / 4) as u32, delta);
            } else {
                self.head(0, delta);
                self.data.extend_from_slice(&(len as u32 + 4).to_ne_bytes());
            }
            self.data.extend_from_slice(payload);
            self.data.resize(self.data.len() + (len - payload.len()), 0);
            self
        }
        pub fn extend(&mut self, delta: u64) -> &mut Self {
            self.head(30, (delta & ((1 << 27) - 1)) as u32);
            self.data
                .extend_from_slice(&((delta >> 27) as u32).to_ne_bytes());
            self
        }
        pub fn stamp(&mut self, abs: u64) -> &mut Self {
            self.head(31, (abs & ((1 << 27) - 1)) as u32);
            self.data
                .extend_from_slice(&((abs >> 27) as u32).to_ne_bytes());
            self
        }
        pub fn padding(&mut self, delta: u32, len: u32) -> &mut Self {
            self.head(29, delta);
            self.data.extend_from_slice(&len.to_ne_bytes());
            self.data.resize(self.data.len() + len as usize - 4, 0xee);
            self
        }
        pub fn missed(&mut self, stored: Option<u64>) -> &mut Self {
            self.flags = super::RB_MISSED_EVENTS;
            if stored.is_some() {
                self.flags |= super::RB_MISSED_STORED;
            }
            self.stored = stored;
            self
        }
        pub fn build(&self) -> Vec<u8> {
            let mut p = vec![0u8; 4096];
            p[0..8].copy_from_slice(&self.ts.to_ne_bytes());
            let commit = self.data.len() as u64 | self.flags;
            p[8..16].copy_from_slice(&commit.to_ne_bytes());
            p[16..16 + self.data.len()].copy_from_slice(&self.data);
            if let Some(n) = self.stored {
                let at = 16 + self.data.len();
                p[at..at + 8].copy_from_slice(&n.to_ne_bytes());
            }
            p
        }
    }
}

#[cfg(test)]
mod tests {
    use super::build::PageBuilder;
    use super::*;

    const HEADER_PAGE: &str = "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;
\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;
\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;
\tfield: char data;\toffset:16;\tsize:4080;\tsigned:0;
";

    fn all(page: &[u8]) -> (Missed, Vec<(u64, Vec<u8>)>) {
        let p = PageLayout::X86_64_4K.page(page).unwrap();
        let recs = p
            .records()
            .map(|r| r.map(|r| (r.ts, r.payload.to_vec())))
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        (p.missed, recs)
    }

    #[test]
    fn header_page() {
        let l = PageLayout::parse(HEADER_PAGE, 4096).unwrap();
        assert_eq!(l, PageLayout::X86_64_4K);
        assert!(PageLayout::parse(HEADER_PAGE, 8).is_err());
        assert!(PageLayout::parse("", 4096).is_err());
    }

    #[test]
    fn small_and_long_records() {
        let big = vec![7u8; 200];
        let page = PageBuilder::new(1000)
            .event(5, &[1, 2, 3, 4, 5, 6, 7, 8])
            .event(10, &big)
            .build();
        let (m, r) = all(&page);
        assert_eq!(m, Missed::None);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0], (1005, vec![1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!((r[1].0, r[1].1.len()), (1015, 200));
    }

    #[test]
    fn time_extend_and_stamp() {
        let page = PageBuilder::new(100)
            .extend(1 << 40)
            .event(1, &[0; 4])
            .stamp(5_000_000_000_000)
            .event(2, &[0; 4])
            .build();
        let (_, r) = all(&page);
        assert_eq!(r[0].0, 100 + (1 << 40) + 1);
        assert_eq!(r[1].0, 5_000_000_000_002);
    }

    #[test]
    fn abs_stamp_takes_top_bits() {
        let now = (3u64 << 59) | 1000;
        assert_eq!(fix_abs_ts(2000, now), (3u64 << 59) | 2000);
        // Wrapped below the running time: carry into the top bits.
        assert_eq!(fix_abs_ts(500, now), (4u64 << 59) | 500);
    }

    #[test]
    fn padding_is_skipped_and_null_padding_ends() {
        let mut b = PageBuilder::new(0);
        b.event(1, &[1; 4]).padding(3, 12).event(1, &[2; 4]);
        // A null padding (delta 0) ends the page even if bytes follow.
        b.data.extend_from_slice(&29u32.to_ne_bytes());
        b.event(1, &[3; 4]);
        let (_, r) = all(&b.build());
        assert_eq!(r.len(), 2);
        assert_eq!(r[1], (2, vec![2; 4]), "padding adds no time");
    }

    #[test]
    fn missed_flags() {
        let page = PageBuilder::new(0)
            .event(1, &[0; 4])
            .missed(Some(1234))
            .build();
        let (m, r) = all(&page);
        assert_eq!(m, Missed::Count(1234));
        assert_eq!(r.len(), 1);
        let page = PageBuilder::new(0).event(1, &[0; 4]).missed(None).build();
        assert_eq!(all(&page).0, Missed::Unknown);
    }

    #[test]
    fn corrupt_pages_are_errors() {
        let l = PageLayout::X86_64_4K;
        assert!(l.page(&[0; 8]).is_err());
        let mut p = vec![0u8; 4096];
        p[8..16].copy_from_slice(&5000u64.to_ne_bytes());
        assert!(l.page(&p).is_err());
        // A record claiming more than the data holds.
        let mut b = PageBuilder::new(0);
        b.data.extend_from_slice(&0u32.to_ne_bytes());
        b.data.extend_from_slice(&4000u32.to_ne_bytes());
        let page = b.build();
        let pg = l.page(&page).unwrap();
        let v: Vec<_> = pg.records().collect();
        assert_eq!(v.len(), 1);
        assert!(v[0].is_err());
    }
}
