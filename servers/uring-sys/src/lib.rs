//! A thin binding to liburing (the system library, Debian's `liburing-dev`), for completion-based
//! network I/O with owned buffers.
//!
//! - [`ffi`]: the C declarations. liburing's real functions are declared as liburing exports them;
//!   its `static inline` helpers are reached through `src/shim.c`, which forwards each call
//!   unchanged to the helper of the same name.
//! - [`Ring`]: one `struct io_uring`, with one method per operation kind. Each queues one
//!   submission queue entry (SQE) tagged with a caller-chosen `user_data`; [`Ring::submit_and_wait`]
//!   hands queued entries to the kernel, and [`Ring::next_completion`] returns each completion
//!   (CQE) with the `user_data` of its operation.
//!
//! The kernel reads and writes an operation's buffer at any time until the operation's completion
//! has been reaped, so the operations that take a buffer are `unsafe`: the caller keeps the buffer
//! alive and unmoved until then.

use std::io;
use std::os::unix::io::{IntoRawFd, OwnedFd, RawFd};
use std::ptr::{self, NonNull};

/// Raw declarations.
pub mod ffi {
    use std::os::raw::{c_int, c_uint, c_void};

    /// `struct io_uring`: opaque, allocated by the shim.
    #[repr(C)]
    pub struct io_uring {
        _opaque: [u8; 0],
    }

    /// `struct io_uring_sqe`: opaque, only filled by liburing's helpers.
    #[repr(C)]
    pub struct io_uring_sqe {
        _opaque: [u8; 0],
    }

    /// `struct io_uring_cqe` of the kernel ABI (without `IORING_SETUP_CQE32`); the shim checks
    /// the layout at compile time.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct io_uring_cqe {
        pub user_data: u64,
        pub res: i32,
        pub flags: u32,
    }

    /// `struct __kernel_timespec` of the kernel ABI.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct __kernel_timespec {
        pub tv_sec: i64,
        pub tv_nsec: i64,
    }

    // liburing itself (build.rs links it).
    extern "C" {
        pub fn io_uring_submit(ring: *mut io_uring) -> c_int;
        pub fn io_uring_submit_and_wait(ring: *mut io_uring, wait_nr: c_uint) -> c_int;
    }

    // src/shim.c
    extern "C" {
        pub fn shim_io_uring_new(entries: c_uint, flags: c_uint, out: *mut *mut io_uring) -> c_int;
        pub fn shim_io_uring_free(ring: *mut io_uring);
        pub fn shim_io_uring_get_sqe(ring: *mut io_uring) -> *mut io_uring_sqe;
        pub fn shim_io_uring_sqe_set_data64(sqe: *mut io_uring_sqe, data: u64);
        pub fn shim_io_uring_prep_accept(
            sqe: *mut io_uring_sqe,
            fd: c_int,
            addr: *mut libc::sockaddr,
            addrlen: *mut libc::socklen_t,
            flags: c_int,
        );
        pub fn shim_io_uring_prep_recv(
            sqe: *mut io_uring_sqe,
            sockfd: c_int,
            buf: *mut c_void,
            len: usize,
            flags: c_int,
        );
        pub fn shim_io_uring_prep_send(
            sqe: *mut io_uring_sqe,
            sockfd: c_int,
            buf: *const c_void,
            len: usize,
            flags: c_int,
        );
        pub fn shim_io_uring_prep_read(
            sqe: *mut io_uring_sqe,
            fd: c_int,
            buf: *mut c_void,
            nbytes: c_uint,
            offset: u64,
        );
        pub fn shim_io_uring_prep_close(sqe: *mut io_uring_sqe, fd: c_int);
        pub fn shim_io_uring_prep_timeout(
            sqe: *mut io_uring_sqe,
            ts: *mut __kernel_timespec,
            count: c_uint,
            flags: c_uint,
        );
        pub fn shim_io_uring_prep_cancel64(sqe: *mut io_uring_sqe, user_data: u64, flags: c_int);
        pub fn shim_io_uring_peek_cqe(
            ring: *mut io_uring,
            cqe_ptr: *mut *mut io_uring_cqe,
        ) -> c_int;
        pub fn shim_io_uring_cqe_seen(ring: *mut io_uring, cqe: *mut io_uring_cqe);
    }
}

pub use ffi::__kernel_timespec as Timespec;
pub use ffi::io_uring_cqe as Cqe;

/// liburing reports errors as `-errno`.
fn check(ret: i32) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::from_raw_os_error(-ret))
    } else {
        Ok(ret as usize)
    }
}

/// The kernel takes at most `u32::MAX` bytes per operation; a longer buffer is a short transfer,
/// which callers of `recv` and `send` handle anyway.
fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// One io_uring instance (`io_uring_queue_init`, no setup flags), used by the thread that owns it.
///
/// Not `Send`: the thread-per-core design this exists for keeps a ring on the thread that made
/// it.
pub struct Ring {
    raw: NonNull<ffi::io_uring>,
}

impl Ring {
    /// A ring of `entries` SQEs (and twice as many CQEs). Fails with the kernel's error when
    /// io_uring is unavailable: `ENOSYS` (no kernel support), `EPERM` (seccomp, or the
    /// `kernel.io_uring_disabled` sysctl), `ENOMEM` (locked-memory limit on kernels before 5.12).
    pub fn new(entries: u32) -> io::Result<Ring> {
        let mut raw = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; the shim sets it only when it returns 0.
        check(unsafe { ffi::shim_io_uring_new(entries, 0, &mut raw) })?;
        Ok(Ring {
            raw: NonNull::new(raw).expect("shim_io_uring_new returned 0 without a ring"),
        })
    }

    /// A free SQE tagged with `user_data`. When the submission queue is full, first submits what
    /// it holds, which empties it (no `SQPOLL`: the kernel consumes SQEs during the call).
    fn sqe(&mut self, user_data: u64) -> io::Result<*mut ffi::io_uring_sqe> {
        // SAFETY: the ring is initialised; a non-null SQE is ours until the next submit, and
        // set_data64 writes only into it.
        unsafe {
            let mut sqe = ffi::shim_io_uring_get_sqe(self.raw.as_ptr());
            if sqe.is_null() {
                self.submit()?;
                sqe = ffi::shim_io_uring_get_sqe(self.raw.as_ptr());
            }
            if sqe.is_null() {
                return Err(io::Error::from_raw_os_error(libc::EBUSY));
            }
            ffi::shim_io_uring_sqe_set_data64(sqe, user_data);
            Ok(sqe)
        }
    }

    /// Queues `accept4(listener, NULL, NULL, flags)`; the completion's `res` is the new socket.
    pub fn accept(&mut self, listener: RawFd, flags: i32, user_data: u64) -> io::Result<()> {
        let sqe = self.sqe(user_data)?;
        // SAFETY: a fresh SQE; with null address pointers the kernel writes no user memory.
        unsafe {
            ffi::shim_io_uring_prep_accept(sqe, listener, ptr::null_mut(), ptr::null_mut(), flags)
        };
        Ok(())
    }

    /// Queues `recv(fd, buf, len, flags)`.
    ///
    /// # Safety
    /// `buf` must be valid for writes of `len` bytes, and neither read, written, moved nor freed
    /// by anyone else, until this operation's completion has been returned by
    /// [`next_completion`](Self::next_completion).
    pub unsafe fn recv(
        &mut self,
        fd: RawFd,
        buf: *mut u8,
        len: usize,
        flags: i32,
        user_data: u64,
    ) -> io::Result<()> {
        let sqe = self.sqe(user_data)?;
        ffi::shim_io_uring_prep_recv(sqe, fd, buf.cast(), len32(len) as usize, flags);
        Ok(())
    }

    /// Queues `send(fd, buf, len, flags)`. A stream socket may send fewer bytes (`res`) than
    /// `len`.
    ///
    /// # Safety
    /// `buf` must be valid for reads of `len` bytes, and neither written, moved nor freed until
    /// this operation's completion has been returned by [`next_completion`](Self::next_completion).
    pub unsafe fn send(
        &mut self,
        fd: RawFd,
        buf: *const u8,
        len: usize,
        flags: i32,
        user_data: u64,
    ) -> io::Result<()> {
        let sqe = self.sqe(user_data)?;
        ffi::shim_io_uring_prep_send(sqe, fd, buf.cast(), len32(len) as usize, flags);
        Ok(())
    }

    /// Queues `read(fd, buf, len)` at the file's current position (for pipes, eventfds, ...).
    ///
    /// # Safety
    /// As for [`recv`](Self::recv).
    pub unsafe fn read(
        &mut self,
        fd: RawFd,
        buf: *mut u8,
        len: usize,
        user_data: u64,
    ) -> io::Result<()> {
        let sqe = self.sqe(user_data)?;
        // Offset -1: the current file position, as read(2).
        ffi::shim_io_uring_prep_read(sqe, fd, buf.cast(), len32(len), u64::MAX);
        Ok(())
    }

    /// Queues `close(fd)`, taking ownership of `fd`. If no SQE can be had, closes `fd` at once
    /// with close(2) and returns the error; no completion will then arrive.
    pub fn close(&mut self, fd: OwnedFd, user_data: u64) -> io::Result<()> {
        let sqe = self.sqe(user_data)?; // on error `fd` is dropped here, which closes it
                                        // SAFETY: a fresh SQE; the ring now owns the descriptor and closes it.
        unsafe { ffi::shim_io_uring_prep_close(sqe, fd.into_raw_fd()) };
        Ok(())
    }

    /// Queues a timeout that completes (with `res == -ETIME`) after `ts`. `'static` because the
    /// kernel reads `ts` when the entry is submitted, which may be at any later call.
    pub fn timeout(&mut self, ts: &'static Timespec, user_data: u64) -> io::Result<()> {
        let sqe = self.sqe(user_data)?;
        // SAFETY: a fresh SQE; the kernel only reads `ts`, which lives forever. liburing's
        // prototype takes a mutable pointer, but IORING_OP_TIMEOUT never writes through it.
        unsafe { ffi::shim_io_uring_prep_timeout(sqe, ts as *const Timespec as *mut _, 0, 0) };
        Ok(())
    }

    /// Queues a request to cancel the operation tagged `target`. The target then completes
    /// (with `-ECANCELED` unless it had already finished); this request completes on its own
    /// with 0, `-ENOENT` (no such operation) or `-EALREADY` (too late to stop).
    pub fn cancel(&mut self, target: u64, user_data: u64) -> io::Result<()> {
        let sqe = self.sqe(user_data)?;
        // SAFETY: a fresh SQE; cancellation touches no user memory.
        unsafe { ffi::shim_io_uring_prep_cancel64(sqe, target, 0) };
        Ok(())
    }

    /// Hands every queued SQE to the kernel; returns how many.
    pub fn submit(&mut self) -> io::Result<usize> {
        // SAFETY: the ring is initialised.
        check(unsafe { ffi::io_uring_submit(self.raw.as_ptr()) })
    }

    /// Hands every queued SQE to the kernel and waits, in the same system call, until at least
    /// `wait_nr` completions are ready; returns how many SQEs were submitted.
    pub fn submit_and_wait(&mut self, wait_nr: u32) -> io::Result<usize> {
        // SAFETY: the ring is initialised.
        check(unsafe { ffi::io_uring_submit_and_wait(self.raw.as_ptr(), wait_nr) })
    }

    /// The next ready completion, if any, without waiting (and without a system call unless the
    /// kernel has overflowed completions to flush). Copies it out and marks it seen, so that the
    /// returned value owns nothing of the ring.
    pub fn next_completion(&mut self) -> Option<Cqe> {
        let mut cqe = ptr::null_mut();
        // SAFETY: the ring is initialised; on success `cqe` points into the CQ ring until
        // cqe_seen, and is read before that.
        unsafe {
            if ffi::shim_io_uring_peek_cqe(self.raw.as_ptr(), &mut cqe) != 0 || cqe.is_null() {
                return None;
            }
            let copy = *cqe;
            ffi::shim_io_uring_cqe_seen(self.raw.as_ptr(), cqe);
            Some(copy)
        }
    }
}

impl Drop for Ring {
    /// `io_uring_queue_exit`. Operations still in flight are cancelled by the kernel, but
    /// asynchronously: a caller that lent buffers must have reaped their completions first.
    fn drop(&mut self) {
        // SAFETY: the ring was made by shim_io_uring_new and is freed once.
        unsafe { ffi::shim_io_uring_free(self.raw.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::unix::io::{AsRawFd, FromRawFd};

    /// Waits for the next completion (tests only: a ring that cannot be made skips the test).
    fn wait(ring: &mut Ring) -> Cqe {
        loop {
            if let Some(cqe) = ring.next_completion() {
                return cqe;
            }
            ring.submit_and_wait(1).unwrap();
        }
    }

    fn ring() -> Option<Ring> {
        match Ring::new(8) {
            Ok(ring) => Some(ring),
            Err(e) => {
                eprintln!("skipped: io_uring unavailable: {e}");
                None
            }
        }
    }

    #[test]
    fn accept_recv_send_close_round_trip() {
        let mut ring = match ring() {
            Some(ring) => ring,
            None => return,
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();

        ring.accept(listener.as_raw_fd(), libc::SOCK_CLOEXEC, 1)
            .unwrap();
        let cqe = wait(&mut ring);
        assert_eq!(cqe.user_data, 1);
        assert!(cqe.res >= 0, "accept: {}", cqe.res);
        // SAFETY: a successful accept returns a new descriptor, owned by no one else.
        let server = unsafe { OwnedFd::from_raw_fd(cqe.res) };

        client.write_all(b"ping").unwrap();
        let mut buf = [0u8; 16];
        // SAFETY: `buf` outlives the completion, reaped just below.
        unsafe { ring.recv(server.as_raw_fd(), buf.as_mut_ptr(), buf.len(), 0, 2) }.unwrap();
        let cqe = wait(&mut ring);
        assert_eq!((cqe.user_data, cqe.res), (2, 4));
        assert_eq!(&buf[..4], b"ping");

        // SAFETY: as above.
        unsafe { ring.send(server.as_raw_fd(), buf.as_ptr(), 4, libc::MSG_NOSIGNAL, 3) }.unwrap();
        assert_eq!(
            wait(&mut ring),
            Cqe {
                user_data: 3,
                res: 4,
                flags: 0
            }
        );
        let mut echoed = [0u8; 4];
        client.read_exact(&mut echoed).unwrap();
        assert_eq!(&echoed, b"ping");

        ring.close(server, 4).unwrap();
        assert_eq!(
            wait(&mut ring),
            Cqe {
                user_data: 4,
                res: 0,
                flags: 0
            }
        );
        assert_eq!(client.read(&mut echoed).unwrap(), 0, "closed by the ring");
    }

    #[test]
    fn a_cancelled_recv_completes_with_ecanceled() {
        let mut ring = match ring() {
            Some(ring) => ring,
            None => return,
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let mut buf = [0u8; 16];
        // SAFETY: `buf` outlives the completion, reaped in the loop below.
        unsafe { ring.recv(server.as_raw_fd(), buf.as_mut_ptr(), buf.len(), 0, 7) }.unwrap();
        ring.cancel(7, 8).unwrap();
        let mut results = [wait(&mut ring), wait(&mut ring)];
        results.sort_by_key(|cqe| cqe.user_data);
        assert_eq!(
            (results[0].user_data, results[0].res),
            (7, -libc::ECANCELED)
        );
        assert_eq!((results[1].user_data, results[1].res), (8, 0));
    }

    #[test]
    fn a_timeout_expires_with_etime_and_an_eventfd_read_completes() {
        static TICK: Timespec = Timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000,
        };
        let mut ring = match ring() {
            Some(ring) => ring,
            None => return,
        };
        ring.timeout(&TICK, 5).unwrap();
        assert_eq!(wait(&mut ring).res, -libc::ETIME);

        // SAFETY: eventfd returns a new descriptor or -1, checked.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        assert!(efd >= 0);
        // SAFETY: the new descriptor is owned by no one else.
        let mut efd = unsafe { std::fs::File::from_raw_fd(efd) };
        let mut value = [0u8; 8];
        // SAFETY: `value` outlives the completion, reaped just below.
        unsafe { ring.read(efd.as_raw_fd(), value.as_mut_ptr(), 8, 6) }.unwrap();
        ring.submit().unwrap();
        efd.write_all(&3u64.to_ne_bytes()).unwrap();
        assert_eq!(
            wait(&mut ring),
            Cqe {
                user_data: 6,
                res: 8,
                flags: 0
            }
        );
        assert_eq!(u64::from_ne_bytes(value), 3);
    }

    #[test]
    fn a_full_submission_queue_is_submitted_to_make_room() {
        let mut ring = match ring() {
            Some(ring) => ring,
            None => return,
        };
        // 8 SQEs, 16 CQEs: 12 cancels of nothing need one automatic submit.
        for user_data in 0..12 {
            ring.cancel(1000, user_data).unwrap();
        }
        let mut seen: Vec<u64> = (0..12).map(|_| wait(&mut ring).user_data).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..12).collect::<Vec<_>>());
    }
}
