//! Handler processes: the bound on how many run at once, with a queue for
//! the rest, and the I/O of each (a piped handler's stdin, payload and
//! stderr; another's output), independent of how constructions arrive.

use nix::errno::Errno;
use nix::sys::signal::Signal;
use std::collections::VecDeque;
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// The most a piped handler may write as the payload: request-key reads it
/// into a 32 KiB + 1 buffer and fails once the buffer is full.
pub const PAYLOAD_MAX: usize = 32768;

/// Longest handler output line logged as one (request-key's 512-byte buffer).
const LINE_MAX: usize = 512;

/// At most `limit` jobs run at once; the others wait in arrival order.
#[derive(Debug)]
pub struct Limiter<T> {
    limit: usize,
    running: usize,
    waiting: VecDeque<T>,
    peak_running: usize,
    peak_waiting: usize,
}

impl<T> Limiter<T> {
    pub fn new(limit: usize) -> Limiter<T> {
        assert!(limit > 0, "a limit of 0 would never run anything");
        Limiter {
            limit,
            running: 0,
            waiting: VecDeque::new(),
            peak_running: 0,
            peak_waiting: 0,
        }
    }

    /// Takes a job: returns it if it may start now (it then holds a slot),
    /// else queues it.
    pub fn submit(&mut self, job: T) -> Option<T> {
        if self.running < self.limit {
            self.running += 1;
            self.peak_running = self.peak_running.max(self.running);
            Some(job)
        } else {
            self.waiting.push_back(job);
            self.peak_waiting = self.peak_waiting.max(self.waiting.len());
            None
        }
    }

    /// A job gave its slot back: returns the next job, which now holds that
    /// slot, or `None` (the slot is free).
    pub fn release(&mut self) -> Option<T> {
        assert!(self.running > 0, "release without a running job");
        match self.waiting.pop_front() {
            Some(job) => Some(job),
            None => {
                self.running -= 1;
                None
            }
        }
    }

    /// Removes every waiting job (shutdown).
    pub fn drain(&mut self) -> Vec<T> {
        self.waiting.drain(..).collect()
    }

    pub fn running(&self) -> usize {
        self.running
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// The most jobs that ran, and waited, at once.
    pub fn peaks(&self) -> (usize, usize) {
        (self.peak_running, self.peak_waiting)
    }
}

/// How a handler process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerEnd {
    Exited(i32),
    Signaled(Signal),
    TimedOut(Duration),
}

impl fmt::Display for HandlerEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandlerEnd::Exited(code) => write!(f, "exited {code}"),
            HandlerEnd::Signaled(signal) => write!(f, "killed by {signal}"),
            HandlerEnd::TimedOut(limit) => write!(f, "exceeded {}s, killed", limit.as_secs()),
        }
    }
}

/// Which of a handler's streams a descriptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdin,
    Stdout,
    Stderr,
}

/// What a handler wrote, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    /// From a piped handler's stderr (request-key logs those as errors).
    pub stderr: bool,
    pub text: Vec<u8>,
}

/// The daemon's side of one handler process.
pub struct Process {
    piped: bool,
    stdin: Option<OwnedFd>,
    input: Vec<u8>,
    written: usize,
    stdout: Option<OwnedFd>,
    /// A piped handler's stdout; another's partial output line.
    data: Vec<u8>,
    overflow: bool,
    stderr: Option<OwnedFd>,
    err_line: Vec<u8>,
    exit: Option<HandlerEnd>,
}

impl Process {
    /// Tracks a started handler. A piped handler is fed `input` on its stdin.
    pub fn new(io: crate::spawn::HandlerIo, input: Vec<u8>) -> Process {
        let piped = io.stdin.is_some();
        let mut process = Process {
            piped,
            stdin: io.stdin,
            input,
            written: 0,
            stdout: Some(io.stdout),
            data: Vec::new(),
            overflow: false,
            stderr: io.stderr,
            err_line: Vec::new(),
            exit: None,
        };
        if process.input.is_empty() {
            process.stdin = None;
        }
        process
    }

    /// The descriptors to poll, and for what.
    pub fn poll_set(&self) -> Vec<(RawFd, Stream)> {
        let mut set = Vec::new();
        if let Some(fd) = &self.stdin {
            set.push((fd.as_raw_fd(), Stream::Stdin));
        }
        if let Some(fd) = &self.stdout {
            set.push((fd.as_raw_fd(), Stream::Stdout));
        }
        if let Some(fd) = &self.stderr {
            set.push((fd.as_raw_fd(), Stream::Stderr));
        }
        set
    }

    /// Moves data on one stream as far as it goes without blocking; output
    /// lines to log are appended to `lines`.
    pub fn service(&mut self, stream: Stream, lines: &mut Vec<OutputLine>) {
        match stream {
            Stream::Stdin => self.feed(),
            Stream::Stdout => self.read_stdout(lines),
            Stream::Stderr => self.read_stderr(lines),
        }
    }

    fn feed(&mut self) {
        let Some(fd) = &self.stdin else { return };
        while self.written < self.input.len() {
            match nix::unistd::write(fd, &self.input[self.written..]) {
                Ok(n) => self.written += n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return,
                // EPIPE: the handler does not read it all, as request-key allows.
                Err(_) => break,
            }
        }
        self.stdin = None;
    }

    fn read_stdout(&mut self, lines: &mut Vec<OutputLine>) {
        let Some(fd) = &self.stdout else { return };
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => break,
                Ok(n) if self.piped => {
                    self.data.extend_from_slice(&buf[..n]);
                    if self.data.len() > PAYLOAD_MAX {
                        self.overflow = true;
                        self.data.truncate(PAYLOAD_MAX);
                        break;
                    }
                }
                Ok(n) => {
                    self.data.extend_from_slice(&buf[..n]);
                    split_lines(&mut self.data, false, lines);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return,
                Err(_) => break,
            }
        }
        // End of file (or overflow, or an error): done with stdout.
        self.stdout = None;
        if !self.piped && !self.data.is_empty() {
            lines.push(OutputLine {
                stderr: false,
                text: std::mem::take(&mut self.data),
            });
        }
    }

    fn read_stderr(&mut self, lines: &mut Vec<OutputLine>) {
        let Some(fd) = &self.stderr else { return };
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    self.err_line.extend_from_slice(&buf[..n]);
                    split_lines(&mut self.err_line, true, lines);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return,
                Err(_) => break,
            }
        }
        self.stderr = None;
        if !self.err_line.is_empty() {
            lines.push(OutputLine {
                stderr: true,
                text: std::mem::take(&mut self.err_line),
            });
        }
    }

    /// Records how the process ended (from waitpid, or a timeout).
    pub fn ended(&mut self, end: HandlerEnd) {
        if self.exit.is_none() || matches!(end, HandlerEnd::TimedOut(_)) {
            self.exit = Some(end);
        }
    }

    pub fn end(&self) -> Option<HandlerEnd> {
        self.exit
    }

    /// Whether the process has been reaped and, for a piped handler, both of
    /// its output streams have ended, as request-key waits for.
    pub fn finished(&self) -> bool {
        self.exit.is_some() && (!self.piped || (self.stdout.is_none() && self.stderr.is_none()))
    }

    /// Reads what is there without blocking, keeping open the streams that
    /// have not ended.
    pub fn drain(&mut self, lines: &mut Vec<OutputLine>) {
        if self.stdout.is_some() {
            self.read_stdout(lines);
        }
        if self.stderr.is_some() {
            self.read_stderr(lines);
        }
    }

    /// Reads what is left without blocking, and closes every stream (a
    /// handler's own children may keep theirs open).
    pub fn close(&mut self, lines: &mut Vec<OutputLine>) {
        self.stdin = None;
        if self.stdout.is_some() {
            self.read_stdout(lines);
        }
        if self.stderr.is_some() {
            self.read_stderr(lines);
        }
        self.stdout = None;
        self.stderr = None;
        if !self.piped && !self.data.is_empty() {
            lines.push(OutputLine {
                stderr: false,
                text: std::mem::take(&mut self.data),
            });
        }
    }

    pub fn piped(&self) -> bool {
        self.piped
    }

    /// A piped handler's payload, and whether it wrote more than `PAYLOAD_MAX`.
    pub fn payload(&self) -> (&[u8], bool) {
        (&self.data, self.overflow)
    }
}

/// Moves the complete lines of `buffer` (and over-long partial ones) to `lines`.
fn split_lines(buffer: &mut Vec<u8>, stderr: bool, lines: &mut Vec<OutputLine>) {
    while let Some(newline) = buffer.iter().position(|&b| b == b'\n') {
        let mut line: Vec<u8> = buffer.drain(..=newline).collect();
        line.pop();
        lines.push(OutputLine { stderr, text: line });
    }
    while buffer.len() >= LINE_MAX {
        let line: Vec<u8> = buffer.drain(..LINE_MAX).collect();
        lines.push(OutputLine { stderr, text: line });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_runs_at_most_limit_in_arrival_order() {
        let mut limiter = Limiter::new(2);
        assert_eq!(limiter.submit(1), Some(1));
        assert_eq!(limiter.submit(2), Some(2));
        assert_eq!(limiter.submit(3), None);
        assert_eq!(limiter.submit(4), None);
        assert_eq!((limiter.running(), limiter.waiting()), (2, 2));
        assert_eq!(limiter.release(), Some(3));
        assert_eq!(limiter.release(), Some(4));
        assert_eq!(limiter.release(), None);
        assert_eq!(limiter.running(), 1);
        assert_eq!(limiter.submit(5), Some(5));
        assert_eq!(limiter.submit(6), None);
        assert_eq!(limiter.drain(), [6]);
        assert_eq!(limiter.peaks(), (2, 2));
    }

    /// A burst of 10,000 requests with a bound of 16: never more than 16 run,
    /// every request runs once, in arrival order.
    #[test]
    fn burst_of_10000_is_bounded_and_completes() {
        const BURST: usize = 10_000;
        const BOUND: usize = 16;
        let mut limiter = Limiter::new(BOUND);
        let mut running: VecDeque<usize> = VecDeque::new();
        let mut started = Vec::with_capacity(BURST);
        let mut peak = 0;
        for request in 0..BURST {
            if let Some(job) = limiter.submit(request) {
                running.push_back(job);
                started.push(job);
            }
            peak = peak.max(running.len());
            // Every third arrival, the oldest handler finishes.
            if request % 3 == 0 {
                if let Some(done) = running.pop_front() {
                    let _ = done;
                    if let Some(next) = limiter.release() {
                        running.push_back(next);
                        started.push(next);
                    }
                }
            }
            assert!(limiter.running() <= BOUND);
            assert_eq!(limiter.running(), running.len());
        }
        while running.pop_front().is_some() {
            if let Some(next) = limiter.release() {
                running.push_back(next);
                started.push(next);
            }
            peak = peak.max(running.len());
        }
        assert_eq!(peak, BOUND);
        assert_eq!(limiter.running(), 0);
        assert_eq!(started, (0..BURST).collect::<Vec<_>>());
        let (peak_running, peak_waiting) = limiter.peaks();
        assert_eq!(peak_running, BOUND);
        assert!(peak_waiting > BURST / 2, "{peak_waiting}");
    }

    #[test]
    fn output_is_split_into_lines() {
        let mut lines = Vec::new();
        let mut buffer = b"one\ntwo\nthr".to_vec();
        split_lines(&mut buffer, true, &mut lines);
        assert_eq!(buffer, b"thr");
        assert_eq!(
            lines,
            [
                OutputLine {
                    stderr: true,
                    text: b"one".to_vec()
                },
                OutputLine {
                    stderr: true,
                    text: b"two".to_vec()
                }
            ]
        );
        let mut long = vec![b'x'; LINE_MAX + 3];
        lines.clear();
        split_lines(&mut long, false, &mut lines);
        assert_eq!(lines.len(), 1);
        assert_eq!(long.len(), 3);
    }
}
