//! The keyagent module's channel, /dev/keyagent (include/keyagent.h): an
//! agent without signals. read() gives whole request records, each carrying
//! everything the daemon needs about a construction; write() takes answer
//! records, which the module applies with the authority it keeps, so the
//! daemon never assumes it.

use crate::keys::Serial;
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// The channel device.
pub const DEVICE: &str = "/dev/keyagent";
/// `KEYAGENT_ABI_VERSION`.
pub const ABI_VERSION: u16 = 1;
/// Every record's size is a multiple of this.
pub const RECORD_ALIGN: usize = 8;
/// No request record is longer: a buffer this long always holds the next one.
pub const REQUEST_MAX: usize = 16384;
/// Longest payload of one answer.
pub const PAYLOAD_MAX: usize = 1024 * 1024 - 1;
/// Longest write().
pub const WRITE_MAX: usize = 2 * 1024 * 1024;
/// `KEYAGENT_REQUEST_KERNEL`: the kernel made the request.
pub const REQUEST_KERNEL: u16 = 0x1;

/// Bytes of `struct keyagent_request` before its strings.
pub const REQUEST_HEADER: usize = 32;
/// Bytes of `struct keyagent_answer` before its payload.
pub const ANSWER_HEADER: usize = 24;

const OP_INSTANTIATE: u16 = 1;
const OP_REJECT: u16 = 2;
const OP_NEGATE: u16 = 3;

/// How many bytes one read() asks for: room for several records.
pub const READ_BUFFER: usize = 4 * REQUEST_MAX;

/// Whether an open() error means the module offers no channel (no device
/// node, no such device), rather than a failure to use one.
pub fn unavailable(err: Errno) -> bool {
    matches!(err, Errno::ENOENT | Errno::ENODEV | Errno::ENXIO)
}

/// One construction, as read from the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub flags: u16,
    /// The key under construction.
    pub serial: Serial,
    /// The requesting thread in the daemon's pid namespace, or 0.
    pub pid: i32,
    /// The requester's fsuid and fsgid in the daemon's user namespace.
    pub uid: u32,
    pub gid: u32,
    pub key_type: Vec<u8>,
    pub description: Vec<u8>,
    /// The callout information, as the module gives it.
    pub callout: Vec<u8>,
}

impl Record {
    /// The kernel made the request (override credentials or a kernel thread).
    pub fn by_kernel(&self) -> bool {
        self.flags & REQUEST_KERNEL != 0
    }
}

/// A record that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// Where in the buffer the record starts.
    pub offset: usize,
    /// The construction it is about, if its header could be read.
    pub serial: Option<Serial>,
    pub reason: String,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record at byte {}: {}", self.offset, self.reason)
    }
}

fn u16_at(buf: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes(buf[at..at + 2].try_into().expect("2 bytes"))
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

/// Splits what one read() returned into its records. A record whose size
/// is sound but whose contents are not is an error in its place, and the
/// next one is read; a size that is not (short, misaligned, past the end of
/// the buffer) ends the list with an error, since nothing after it can be
/// found.
pub fn parse_records(buf: &[u8]) -> Vec<Result<Record, RecordError>> {
    let mut records = Vec::new();
    let mut offset = 0;
    while offset < buf.len() {
        let rest = &buf[offset..];
        let fail = |serial, reason: String| RecordError {
            offset,
            serial,
            reason,
        };
        if rest.len() < REQUEST_HEADER {
            records.push(Err(fail(
                None,
                format!(
                    "truncated: {} byte(s), shorter than a header ({REQUEST_HEADER})",
                    rest.len()
                ),
            )));
            break;
        }
        let size = u32_at(rest, 0) as usize;
        if size < REQUEST_HEADER || !size.is_multiple_of(RECORD_ALIGN) {
            records.push(Err(fail(
                None,
                format!(
                    "size {size} is not a multiple of {RECORD_ALIGN} of at least {REQUEST_HEADER}"
                ),
            )));
            break;
        }
        if size > rest.len() {
            records.push(Err(fail(
                None,
                format!("truncated: size {size}, {} byte(s) read", rest.len()),
            )));
            break;
        }
        records.push(parse_record(&rest[..size]).map_err(|(serial, reason)| fail(serial, reason)));
        offset += size;
    }
    records
}

/// Parses one record of a sound size.
fn parse_record(record: &[u8]) -> Result<Record, (Option<Serial>, String)> {
    let version = u16_at(record, 4);
    let serial = u32_at(record, 8) as Serial;
    let fail = |reason: String| (Some(serial), reason);
    if version != ABI_VERSION {
        return Err(fail(format!("ABI version {version}, not {ABI_VERSION}")));
    }
    let lengths = [
        usize::from(u16_at(record, 24)),
        usize::from(u16_at(record, 26)),
        u32_at(record, 28) as usize,
    ];
    let mut strings = Vec::with_capacity(3);
    let mut at = REQUEST_HEADER;
    for (name, len) in ["type", "description", "callout information"]
        .iter()
        .zip(lengths)
    {
        let end = at
            .checked_add(len)
            .filter(|&end| end < record.len())
            .ok_or_else(|| {
                fail(format!(
                    "its {name} ({len} bytes at {at}) and NUL overrun its size {}",
                    record.len()
                ))
            })?;
        if record[end] != 0 {
            return Err(fail(format!("its {name} is not followed by a NUL")));
        }
        strings.push(record[at..end].to_vec());
        at = end + 1;
    }
    if record[at..].iter().any(|&b| b != 0) {
        return Err(fail("nonzero padding".to_string()));
    }
    let callout = strings.pop().expect("three strings");
    let description = strings.pop().expect("three strings");
    let key_type = strings.pop().expect("three strings");
    Ok(Record {
        flags: u16_at(record, 6),
        serial,
        pid: u32_at(record, 12) as i32,
        uid: u32_at(record, 16),
        gid: u32_at(record, 20),
        key_type,
        description,
        callout,
    })
}

/// What the daemon answers for one construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Instantiate with the payload; the key lives `timeout` seconds (0: forever).
    Instantiate { payload: Vec<u8>, timeout: u32 },
    /// Fail requests with `error` (positive errno) for `timeout` seconds.
    Reject { error: Errno, timeout: u32 },
    /// Fail requests with ENOKEY for `timeout` seconds (keyctl_negate()).
    Negate { timeout: u32 },
}

/// An answer record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub serial: Serial,
    pub verdict: Verdict,
}

/// `n` rounded up to a multiple of `RECORD_ALIGN`.
fn aligned(n: usize) -> usize {
    n.div_ceil(RECORD_ALIGN) * RECORD_ALIGN
}

impl Answer {
    /// Bytes of the record.
    pub fn size(&self) -> usize {
        let payload = match &self.verdict {
            Verdict::Instantiate { payload, .. } => payload.len(),
            _ => 0,
        };
        aligned(ANSWER_HEADER + payload)
    }

    /// Appends the record to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (op, error, timeout, payload): (u16, u32, u32, &[u8]) = match &self.verdict {
            Verdict::Instantiate { payload, timeout } => (OP_INSTANTIATE, 0, *timeout, payload),
            Verdict::Reject { error, timeout } => (OP_REJECT, *error as u32, *timeout, &[]),
            Verdict::Negate { timeout } => (OP_NEGATE, 0, *timeout, &[]),
        };
        let size = self.size();
        let start = out.len();
        out.extend_from_slice(&(size as u32).to_ne_bytes());
        out.extend_from_slice(&ABI_VERSION.to_ne_bytes());
        out.extend_from_slice(&op.to_ne_bytes());
        out.extend_from_slice(&self.serial.to_ne_bytes());
        out.extend_from_slice(&error.to_ne_bytes());
        out.extend_from_slice(&timeout.to_ne_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_ne_bytes());
        out.extend_from_slice(payload);
        out.resize(start + size, 0);
    }
}

/// Encodes answers into write()s: as many whole records as fit in
/// `WRITE_MAX` each (one alone if it is longer). Returns each write's bytes
/// and the end offset of each of its records.
pub fn encode_batches(answers: &[Answer]) -> Vec<(Vec<u8>, Vec<usize>)> {
    let mut batches = Vec::new();
    let mut buf = Vec::new();
    let mut ends = Vec::new();
    for answer in answers {
        if !ends.is_empty() && buf.len() + answer.size() > WRITE_MAX {
            batches.push((std::mem::take(&mut buf), std::mem::take(&mut ends)));
        }
        answer.encode(&mut buf);
        ends.push(buf.len());
    }
    if !ends.is_empty() {
        batches.push((buf, ends));
    }
    batches
}

/// An open channel, non-blocking and close-on-exec. Closing it (dropping
/// the last reference) makes the module fail every construction it handed
/// over and that is still pending with EOWNERDEAD.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    /// Opens the device.
    pub fn open() -> Result<Channel, Errno> {
        let fd = open(
            DEVICE,
            OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        )?;
        Ok(Channel { fd })
    }

    /// The descriptor, as registrations name it.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads what is waiting, without blocking (`EAGAIN`: nothing).
    pub fn read(&self, buf: &mut [u8]) -> Result<Vec<Result<Record, RecordError>>, Errno> {
        loop {
            match nix::unistd::read(&self.fd, buf) {
                Err(Errno::EINTR) => continue,
                Err(err) => return Err(err),
                Ok(n) => return Ok(parse_records(&buf[..n])),
            }
        }
    }

    fn write(&self, bytes: &[u8]) -> Result<usize, Errno> {
        loop {
            match nix::unistd::write(&self.fd, bytes) {
                Err(Errno::EINTR) => continue,
                result => return result,
            }
        }
    }

    /// Writes one answer.
    pub fn answer(&self, answer: &Answer) -> Result<(), Errno> {
        answer_one(|bytes| self.write(bytes), answer)
    }

    /// Writes several answers in as few write()s as fit, and tells what
    /// became of each (see `answer_all_with`).
    pub fn answer_all(&self, answers: &[Answer]) -> Vec<Result<(), Errno>> {
        answer_all_with(|bytes| self.write(bytes), answers)
    }
}

/// Writes one answer with `write`.
fn answer_one(write: impl Fn(&[u8]) -> Result<usize, Errno>, answer: &Answer) -> Result<(), Errno> {
    if let Verdict::Instantiate { payload, .. } = &answer.verdict {
        // As keyctl_instantiate() refuses it.
        if payload.len() > PAYLOAD_MAX {
            return Err(Errno::EINVAL);
        }
    }
    let mut buf = Vec::with_capacity(answer.size());
    answer.encode(&mut buf);
    match write(&buf)? {
        n if n == buf.len() => Ok(()),
        // The only record was not applied, yet no error: not the ABI.
        _ => Err(Errno::EIO),
    }
}

/// Writes answers with `write` in as few calls as fit, and tells what became
/// of each. The module checks a whole write before applying any of it, so
/// when a write fails as a whole (one of its serials ended, say) its answers
/// are written again one by one, each getting its own result; when the key
/// type refuses a payload, write() returns the bytes of the records applied
/// before it, and the rest are written again one by one.
fn answer_all_with(
    write: impl Fn(&[u8]) -> Result<usize, Errno>,
    answers: &[Answer],
) -> Vec<Result<(), Errno>> {
    let mut results = Vec::with_capacity(answers.len());
    for (buf, ends) in encode_batches(answers) {
        let first = results.len();
        let batch = &answers[first..first + ends.len()];
        match write(&buf) {
            Ok(n) if n == buf.len() => results.extend(batch.iter().map(|_| Ok(()))),
            Ok(n) => {
                let applied = ends.iter().take_while(|&&end| end <= n).count();
                results.extend(batch[..applied].iter().map(|_| Ok(())));
                results.extend(batch[applied..].iter().map(|a| answer_one(&write, a)));
            }
            Err(err) if batch.len() == 1 => results.push(Err(err)),
            Err(_) => results.extend(batch.iter().map(|a| answer_one(&write, a))),
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request record as the module writes it.
    fn record(serial: i32, key_type: &str, description: &str, callout: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let body = REQUEST_HEADER + key_type.len() + description.len() + callout.len() + 3;
        let size = aligned(body);
        out.extend_from_slice(&(size as u32).to_ne_bytes());
        out.extend_from_slice(&ABI_VERSION.to_ne_bytes());
        out.extend_from_slice(&0u16.to_ne_bytes());
        out.extend_from_slice(&serial.to_ne_bytes());
        out.extend_from_slice(&4321i32.to_ne_bytes());
        out.extend_from_slice(&1000u32.to_ne_bytes());
        out.extend_from_slice(&100u32.to_ne_bytes());
        out.extend_from_slice(&(key_type.len() as u16).to_ne_bytes());
        out.extend_from_slice(&(description.len() as u16).to_ne_bytes());
        out.extend_from_slice(&(callout.len() as u32).to_ne_bytes());
        for part in [key_type.as_bytes(), description.as_bytes(), callout] {
            out.extend_from_slice(part);
            out.push(0);
        }
        out.resize(size, 0);
        out
    }

    fn set_u32(buf: &mut [u8], at: usize, value: u32) {
        buf[at..at + 4].copy_from_slice(&value.to_ne_bytes());
    }

    #[test]
    fn parses_one_record() {
        let buf = record(77, "user", "db:pw", b"hello");
        // 32 + "user\0" 5 + "db:pw\0" 6 + "hello\0" 6 = 49, padded to 56.
        assert_eq!(buf.len(), 56);
        let records = parse_records(&buf);
        assert_eq!(
            records,
            [Ok(Record {
                flags: 0,
                serial: 77,
                pid: 4321,
                uid: 1000,
                gid: 100,
                key_type: b"user".to_vec(),
                description: b"db:pw".to_vec(),
                callout: b"hello".to_vec(),
            })]
        );
        assert!(!records[0].as_ref().unwrap().by_kernel());
    }

    #[test]
    fn exact_fit_needs_no_padding() {
        // 32 + 5 + 2 + 1 = 40: a multiple of 8 already.
        let buf = record(1, "user", "d", b"");
        assert_eq!(buf.len(), 40);
        let records = parse_records(&buf);
        let r = records[0].as_ref().unwrap();
        assert_eq!(
            (r.description.as_slice(), r.callout.as_slice()),
            (&b"d"[..], &b""[..])
        );
    }

    #[test]
    fn parses_a_batch_of_records() {
        let mut buf = record(1, "user", "a", b"x");
        buf.extend(record(2, "dns_resolver", "example.org", b"ipv4"));
        let mut kernel = record(3, "user", "c", &[0xff; 300]);
        kernel[6..8].copy_from_slice(&REQUEST_KERNEL.to_ne_bytes());
        buf.extend(kernel);
        let records = parse_records(&buf);
        let serials: Vec<Serial> = records.iter().map(|r| r.as_ref().unwrap().serial).collect();
        assert_eq!(serials, [1, 2, 3]);
        let second = records[1].as_ref().unwrap();
        assert_eq!(second.key_type, b"dns_resolver");
        assert_eq!(second.description, b"example.org");
        assert_eq!(second.callout, b"ipv4");
        let third = records[2].as_ref().unwrap();
        assert_eq!(third.callout.len(), 300);
        assert!(third.by_kernel());
    }

    #[test]
    fn truncated_records_end_the_list() {
        let mut buf = record(1, "user", "a", b"x");
        let second = record(2, "user", "b", b"y");
        // Half a header.
        buf.extend_from_slice(&second[..12]);
        let records = parse_records(&buf);
        assert_eq!(records.len(), 2);
        assert!(records[0].is_ok());
        let err = records[1].as_ref().unwrap_err();
        assert_eq!((err.offset, err.serial), (48, None));
        assert!(err.reason.contains("shorter than a header"), "{err}");

        // A whole header, but not the whole record.
        let records = parse_records(&second[..second.len() - 8]);
        let err = records[0].as_ref().unwrap_err();
        assert!(
            err.reason.contains("truncated: size 48, 40 byte(s)"),
            "{err}"
        );

        assert!(parse_records(&[]).is_empty());
    }

    #[test]
    fn unsound_sizes_end_the_list() {
        for size in [0, 8, 31, 41] {
            let mut buf = record(1, "user", "a", b"x");
            set_u32(&mut buf, 0, size);
            buf.extend(record(2, "user", "b", b"y"));
            let records = parse_records(&buf);
            assert_eq!(records.len(), 1, "size {size}");
            assert!(records[0]
                .as_ref()
                .unwrap_err()
                .reason
                .contains("multiple of 8"));
        }
    }

    #[test]
    fn bad_contents_are_skipped_with_their_serial() {
        let good = record(9, "user", "ok", b"z");
        type Spoil = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(Spoil, &str)> = vec![
            (
                Box::new(|b| b[4..6].copy_from_slice(&2u16.to_ne_bytes())),
                "ABI version 2",
            ),
            (Box::new(|b| set_u32(b, 28, 100)), "overrun"),
            (Box::new(|b| set_u32(b, 28, u32::MAX)), "overrun"),
            (Box::new(|b| b[36] = b'!'), "type is not followed by a NUL"),
            (Box::new(|b| *b.last_mut().unwrap() = 1), "nonzero padding"),
        ];
        for (spoil, reason) in cases {
            let mut buf = record(5, "user", "a", b"x");
            spoil(&mut buf);
            buf.extend_from_slice(&good);
            let records = parse_records(&buf);
            assert_eq!(records.len(), 2, "{reason}");
            let err = records[0].as_ref().unwrap_err();
            assert_eq!(err.serial, Some(5));
            assert!(err.reason.contains(reason), "{err} (expected {reason})");
            assert_eq!(records[1].as_ref().unwrap().serial, 9);
        }
    }

    fn header(buf: &[u8]) -> (u32, u16, u16, i32, u32, u32, u32) {
        (
            u32_at(buf, 0),
            u16_at(buf, 4),
            u16_at(buf, 6),
            u32_at(buf, 8) as i32,
            u32_at(buf, 12),
            u32_at(buf, 16),
            u32_at(buf, 20),
        )
    }

    #[test]
    fn encodes_answers() {
        let mut buf = Vec::new();
        let reject = Answer {
            serial: 42,
            verdict: Verdict::Reject {
                error: Errno::EKEYREJECTED,
                timeout: 7,
            },
        };
        reject.encode(&mut buf);
        assert_eq!(buf.len(), 24);
        assert_eq!(
            header(&buf),
            (24, 1, OP_REJECT, 42, Errno::EKEYREJECTED as u32, 7, 0)
        );

        buf.clear();
        Answer {
            serial: 43,
            verdict: Verdict::Negate { timeout: 60 },
        }
        .encode(&mut buf);
        assert_eq!(header(&buf), (24, 1, OP_NEGATE, 43, 0, 60, 0));

        buf.clear();
        let instantiate = Answer {
            serial: 44,
            verdict: Verdict::Instantiate {
                payload: b"hello".to_vec(),
                timeout: 0,
            },
        };
        instantiate.encode(&mut buf);
        // 24 + 5, padded with zeros to 32.
        assert_eq!(buf.len(), 32);
        assert_eq!(instantiate.size(), 32);
        assert_eq!(header(&buf), (32, 1, OP_INSTANTIATE, 44, 0, 0, 5));
        assert_eq!(&buf[24..29], b"hello");
        assert_eq!(&buf[29..], [0, 0, 0]);
    }

    #[test]
    fn answer_sizes_are_aligned() {
        for (len, size) in [(0, 24), (1, 32), (8, 32), (9, 40), (32768, 32792)] {
            let answer = Answer {
                serial: 1,
                verdict: Verdict::Instantiate {
                    payload: vec![b'x'; len],
                    timeout: 0,
                },
            };
            let mut buf = vec![0xaa; 3];
            answer.encode(&mut buf);
            assert_eq!(
                (answer.size(), buf.len() - 3),
                (size, size),
                "payload {len}"
            );
            assert_eq!(size % RECORD_ALIGN, 0);
        }
    }

    #[test]
    fn batches_split_at_the_write_limit() {
        let small = |serial| Answer {
            serial,
            verdict: Verdict::Negate { timeout: 1 },
        };
        let batches = encode_batches(&[small(1), small(2), small(3)]);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].1, [24, 48, 72]);
        assert_eq!(batches[0].0.len(), 72);
        assert_eq!(header(&batches[0].0[48..]).3, 3);

        // Two of exactly half the write limit fit in one write.
        let big = |serial| Answer {
            serial,
            verdict: Verdict::Instantiate {
                payload: vec![b'x'; WRITE_MAX / 2 - ANSWER_HEADER],
                timeout: 0,
            },
        };
        assert_eq!(big(1).size(), WRITE_MAX / 2);
        // The third starts another write.
        let batches = encode_batches(&[big(1), big(2), big(3), small(4)]);
        let counts: Vec<usize> = batches.iter().map(|(_, ends)| ends.len()).collect();
        assert_eq!(counts, [2, 2]);
        assert!(batches.iter().all(|(buf, _)| buf.len() <= WRITE_MAX));
        // One longer than the limit goes alone (the module refuses it).
        let huge = Answer {
            serial: 5,
            verdict: Verdict::Instantiate {
                payload: vec![b'x'; WRITE_MAX],
                timeout: 0,
            },
        };
        let batches = encode_batches(&[small(1), huge, small(2)]);
        let counts: Vec<usize> = batches.iter().map(|(_, ends)| ends.len()).collect();
        assert_eq!(counts, [1, 1, 1]);
        assert!(encode_batches(&[]).is_empty());
    }

    #[test]
    fn open_errors_that_mean_no_channel() {
        assert!(unavailable(Errno::ENOENT));
        assert!(unavailable(Errno::ENODEV));
        assert!(unavailable(Errno::ENXIO));
        assert!(!unavailable(Errno::EACCES));
        assert!(!unavailable(Errno::EMFILE));
    }

    /// The module's write(), for answers: `ended` serials are not pending
    /// (ENOENT for the whole write), `refused` ones have a payload the key
    /// type refuses (applied records' bytes, or EINVAL if it is the first).
    fn fake_module<'a>(
        ended: &'a [Serial],
        refused: &'a [Serial],
        writes: &'a std::cell::RefCell<Vec<Vec<Serial>>>,
    ) -> impl Fn(&[u8]) -> Result<usize, Errno> + 'a {
        move |buf: &[u8]| {
            let mut records = Vec::new();
            let mut at = 0;
            while at < buf.len() {
                let (size, _, _, serial, ..) = header(&buf[at..]);
                records.push((at, size as usize, serial));
                at += size as usize;
            }
            writes
                .borrow_mut()
                .push(records.iter().map(|r| r.2).collect());
            if records.iter().any(|r| ended.contains(&r.2)) {
                return Err(Errno::ENOENT);
            }
            for (at, _, serial) in &records {
                if refused.contains(serial) {
                    return if *at == 0 {
                        Err(Errno::EINVAL)
                    } else {
                        Ok(*at)
                    };
                }
            }
            Ok(buf.len())
        }
    }

    fn negates(serials: &[Serial]) -> Vec<Answer> {
        serials
            .iter()
            .map(|&serial| Answer {
                serial,
                verdict: Verdict::Negate { timeout: 1 },
            })
            .collect()
    }

    #[test]
    fn a_batch_is_one_write() {
        let writes = Default::default();
        let results = answer_all_with(fake_module(&[], &[], &writes), &negates(&[1, 2, 3]));
        assert_eq!(results, [Ok(()), Ok(()), Ok(())]);
        assert_eq!(*writes.borrow(), [vec![1, 2, 3]]);
    }

    #[test]
    fn a_refused_batch_is_written_again_one_by_one() {
        let writes = Default::default();
        let results = answer_all_with(fake_module(&[2], &[], &writes), &negates(&[1, 2, 3]));
        assert_eq!(results, [Ok(()), Err(Errno::ENOENT), Ok(())]);
        assert_eq!(*writes.borrow(), [vec![1, 2, 3], vec![1], vec![2], vec![3]]);
    }

    #[test]
    fn a_refused_payload_stops_the_batch_there() {
        let writes = Default::default();
        let results = answer_all_with(fake_module(&[], &[3], &writes), &negates(&[1, 2, 3, 4]));
        assert_eq!(results, [Ok(()), Ok(()), Err(Errno::EINVAL), Ok(())]);
        assert_eq!(*writes.borrow(), [vec![1, 2, 3, 4], vec![3], vec![4]]);
        let writes = Default::default();
        let results = answer_all_with(fake_module(&[], &[5], &writes), &negates(&[5]));
        assert_eq!(results, [Err(Errno::EINVAL)]);
        assert_eq!(writes.borrow().len(), 1);
    }

    #[test]
    fn an_oversized_payload_is_refused_before_writing() {
        let writes: std::cell::RefCell<Vec<Vec<Serial>>> = Default::default();
        let answer = Answer {
            serial: 1,
            verdict: Verdict::Instantiate {
                payload: vec![0; PAYLOAD_MAX + 1],
                timeout: 0,
            },
        };
        assert_eq!(
            answer_one(fake_module(&[], &[], &writes), &answer),
            Err(Errno::EINVAL)
        );
        assert!(writes.borrow().is_empty());
    }
}
