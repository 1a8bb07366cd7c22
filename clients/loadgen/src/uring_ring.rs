//! What the io_uring path (`uring`) needs from the kernel, set up once per client thread: the
//! ring (with the flags of Linux 6.1 where the kernel takes them), the provided-buffer pool that
//! multishot receives draw from (Linux 6.0), whether waits can name an absolute time (6.12), and
//! plain TCP sockets for it to connect. [`Features`] says what a ring really got; the fallbacks
//! are a plain ring, single-shot receives into per-connection buffers, and relative timeouts.
//! A kernel without the basic operations (connect, send, recv, close, cancel; Linux 5.6) or
//! without timed waits (`EXT_ARG`, 5.11) is an error: use `--io epoll` there.

use std::alloc::Layout;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::unix::io::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use io_uring::types::{BufRingEntry, SubmitArgs, Timespec};
use io_uring::{opcode, EnterFlags, IoUring, Probe};

/// Bytes one receive completion carries at most (a provided buffer, or a connection's own
/// buffer without multishot).
pub const READ_SIZE: usize = 16 * 1024;
/// The buffer group of the pool (one pool per ring).
pub const GROUP: u16 = 0;

/// The kernel features a client thread's ring uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// One multishot receive per connection from a provided-buffer ring (Linux 6.0); otherwise
    /// a single-shot receive into the connection's own buffer, armed again after each.
    pub recv_multishot: bool,
    /// `SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN` (6.1): completion work runs only when the
    /// thread enters the kernel.
    pub ring_flags: bool,
    /// Waits end at an absolute `CLOCK_MONOTONIC` time (6.12); otherwise at a duration computed
    /// just before entering.
    pub abs_timer: bool,
}

impl fmt::Display for Features {
    /// `key=value` pairs on one line, as the server's io_uring loop prints its own.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = |b: bool| if b { "on" } else { "off" };
        write!(
            f,
            "recv_multishot={} ring_flags={} abs_timer={}",
            on(self.recv_multishot),
            on(self.ring_flags),
            on(self.abs_timer)
        )
    }
}

/// A client thread's ring and what it got.
pub struct Ring {
    pub ring: IoUring,
    pub pool: Option<Pool>,
    pub features: Features,
}

impl Ring {
    /// Submits what is queued and waits for a completion until `until` (a `now_ns` time; `now`
    /// is the clock read just before).
    pub fn enter(&self, now: u64, until: u64) -> io::Result<()> {
        let abs = self.features.abs_timer;
        let timeout = Timespec::from(Duration::from_nanos(if abs {
            until
        } else {
            until.saturating_sub(now)
        }));
        let flags = if abs {
            EnterFlags::ABS_TIMER
        } else {
            EnterFlags::empty()
        };
        let args = SubmitArgs::new().timespec(&timeout);
        match self
            .ring
            .submitter()
            .submit_with_args_and_flags(1, &args, flags)
        {
            Err(e) if !is_retry(&e) && e.raw_os_error() != Some(libc::ETIME) => Err(e),
            _ => Ok(()),
        }
    }
}

/// EINTR: a signal. EBUSY/EAGAIN: the kernel wants completions reaped first.
pub fn is_retry(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
    )
}

/// Makes a ring sized for `connections` (on the calling thread, which must be the one that uses
/// it), with the features the kernel has (multishot receives only if `multishot`).
pub fn setup(connections: usize, multishot: bool) -> io::Result<Ring> {
    let entries = (2 * connections).next_power_of_two().clamp(64, 4096) as u32;
    let mut builder = IoUring::builder();
    builder
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_coop_taskrun();
    let (ring, ring_flags) = match builder.build(entries) {
        Ok(ring) => (ring, true),
        // Before Linux 6.1 the flags are refused: a ring without them.
        Err(_) => (IoUring::new(entries)?, false),
    };
    if !ring.params().is_feature_ext_arg() {
        return Err(io::Error::other(
            "the kernel's io_uring has no timed waits (EXT_ARG, Linux 5.11)",
        ));
    }
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    let needed = [
        ("connect", opcode::Connect::CODE),
        ("send", opcode::Send::CODE),
        ("recv", opcode::Recv::CODE),
        ("close", opcode::Close::CODE),
        ("cancel", opcode::AsyncCancel::CODE),
    ];
    if let Some((name, _)) = needed.iter().find(|op| !probe.is_supported(op.1)) {
        let why = format!("the kernel's io_uring has no {name} operation (Linux 5.6)");
        return Err(io::Error::other(why));
    }
    // Multishot receive came in 6.0 with `SEND_ZC`, which the probe can see.
    let buffers = connections.next_power_of_two().clamp(64, 1024) as u16;
    let pool = (multishot && probe.is_supported(opcode::SendZc::CODE))
        .then(|| Pool::register(&ring, buffers).ok())
        .flatten();
    // A kernel that does not know the flag refuses the call; with nothing to wait for it returns
    // at once otherwise.
    let zero = Timespec::new();
    let abs_timer = ring
        .submitter()
        .submit_with_args_and_flags(0, &SubmitArgs::new().timespec(&zero), EnterFlags::ABS_TIMER)
        .is_ok();
    let features = Features {
        recv_multishot: pool.is_some(),
        ring_flags,
        abs_timer,
    };
    Ok(Ring {
        ring,
        pool,
        features,
    })
}

/// Provided buffers for multishot receives: `count` buffers of [`READ_SIZE`] bytes, and the
/// page-aligned ring of their descriptors that the kernel takes them from (buffer group
/// [`GROUP`]). A buffer goes back with `put` once its bytes are parsed; `publish` shows every
/// buffer put since to the kernel with one store.
pub struct Pool {
    slots: *mut BufRingEntry,
    layout: Layout,
    mask: u16,
    tail: u16,
    memory: Box<[u8]>,
}

impl Pool {
    fn register(ring: &IoUring, count: u16) -> io::Result<Pool> {
        let bytes = usize::from(count) * std::mem::size_of::<BufRingEntry>();
        let layout = Layout::from_size_align(bytes.max(4096), 4096).map_err(io::Error::other)?;
        // SAFETY: a non-zero size; checked for null below.
        let slots = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<BufRingEntry>();
        if slots.is_null() {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        let mut pool = Pool {
            slots,
            layout,
            mask: count - 1,
            tail: 0,
            memory: vec![0; usize::from(count) * READ_SIZE].into_boxed_slice(),
        };
        // SAFETY: the slots and the buffers live until the pool is dropped, after the ring
        // (field order of the driver) or never (leaked while receives are out).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(slots as u64, count, GROUP, 0)?
        };
        for id in 0..count {
            pool.put(id);
        }
        pool.publish();
        Ok(pool)
    }

    /// The first `len` bytes the kernel wrote into buffer `id`.
    pub fn bytes(&self, id: u16, len: usize) -> &[u8] {
        let start = usize::from(id) * READ_SIZE;
        &self.memory[start..start + len.min(READ_SIZE)]
    }

    /// Buffer `id` may be filled again (once published).
    pub fn put(&mut self, id: u16) {
        let at = self.memory[usize::from(id) * READ_SIZE..].as_ptr() as u64;
        // SAFETY: `tail & mask` indexes the ring; the kernel reads a slot only once a published
        // tail has passed it.
        let slot = unsafe { &mut *self.slots.add(usize::from(self.tail & self.mask)) };
        slot.set_addr(at);
        slot.set_len(READ_SIZE as u32);
        slot.set_bid(id);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Hands every buffer put so far to the kernel.
    pub fn publish(&self) {
        // SAFETY: the ring's tail field lies in its first slot, which `slots` maps.
        let tail = unsafe { &*BufRingEntry::tail(self.slots).cast::<AtomicU16>() };
        tail.store(self.tail, Ordering::Release);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: allocated in `register` with this layout.
        unsafe { std::alloc::dealloc(self.slots.cast(), self.layout) };
    }
}

/// The server's address as the kernel takes it for a connect; boxed so that it does not move
/// while a connect naming it is in flight.
pub struct SocketAddress {
    storage: Box<libc::sockaddr_storage>,
    pub len: libc::socklen_t,
    family: libc::c_int,
}

impl SocketAddress {
    pub fn new(addr: SocketAddr) -> SocketAddress {
        // SAFETY: sockaddr_storage is plain data, valid when zeroed.
        let mut storage: Box<libc::sockaddr_storage> = Box::new(unsafe { std::mem::zeroed() });
        let at = (&mut *storage as *mut libc::sockaddr_storage).cast::<u8>();
        let (family, len) = match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: a sockaddr_in fits in a sockaddr_storage.
                unsafe { at.cast::<libc::sockaddr_in>().write(sin) };
                (libc::AF_INET, std::mem::size_of::<libc::sockaddr_in>())
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: a sockaddr_in6 fits in a sockaddr_storage.
                unsafe { at.cast::<libc::sockaddr_in6>().write(sin6) };
                (libc::AF_INET6, std::mem::size_of::<libc::sockaddr_in6>())
            }
        };
        SocketAddress {
            storage,
            len: len as libc::socklen_t,
            family,
        }
    }

    pub fn as_ptr(&self) -> *const libc::sockaddr {
        (&*self.storage as *const libc::sockaddr_storage).cast()
    }

    /// A new TCP socket of the address's family with `TCP_NODELAY`, as the epoll path's. It is
    /// blocking: io_uring waits for it, and a blocking socket lets it do so without `EAGAIN`.
    pub fn tcp_socket(&self) -> io::Result<OwnedFd> {
        // SAFETY: plain system call; the result is checked.
        let raw = unsafe { libc::socket(self.family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor owned by no one else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        // SAFETY: `one` is a valid c_int for the option's length.
        let rc = unsafe {
            libc::setsockopt(
                raw,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(fd)
    }
}
