//! The few OS calls the load generator needs: clock, CPU pinning, thread CPU time, fd limit.

use std::io;

/// Monotonic time in nanoseconds. `CLOCK_MONOTONIC` is answered by the vDSO (no system call)
/// with the TSC clocksource, which is about as cheap as a trustworthy clock gets.
#[inline]
pub fn now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// Wall-clock time (`CLOCK_REALTIME`) in nanoseconds since the epoch.
pub fn realtime_ns() -> u64 {
    clock_ns(libc::CLOCK_REALTIME)
}

#[inline]
fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clocks used here always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Blocks until the wall clock reads `at_ns` (sleeping, then spinning the last millisecond so
/// the start is within microseconds); returns how late it woke, 0 when `at_ns` was still ahead.
pub fn wait_until_realtime(at_ns: u64) -> u64 {
    const SPIN_NS: u64 = 1_000_000;
    let first = realtime_ns();
    if first >= at_ns {
        return first - at_ns;
    }
    loop {
        let now = realtime_ns();
        if now >= at_ns {
            return 0;
        }
        let left = at_ns - now;
        if left > SPIN_NS {
            std::thread::sleep(std::time::Duration::from_nanos(left - SPIN_NS));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Pins the calling thread to `cpus`.
pub fn pin_current_thread(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_SET stays within it for cpu < CPU_SETSIZE (checked
    // by the caller via `allowed_cpus`); pid 0 means the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// CPUs this process may run on.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: as above; sched_getaffinity fills `set`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(io::Error::last_os_error());
        }
        let max = libc::CPU_SETSIZE as usize;
        Ok((0..max).filter(|&c| libc::CPU_ISSET(c, &set)).collect())
    }
}

/// User and system CPU time of the calling thread, in microseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuTime {
    pub user_us: u64,
    pub system_us: u64,
}

impl CpuTime {
    pub fn of_current_thread() -> CpuTime {
        // SAFETY: rusage is plain data filled by getrusage; RUSAGE_THREAD is Linux-specific.
        let ru = unsafe {
            let mut ru: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_THREAD, &mut ru);
            ru
        };
        let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        CpuTime {
            user_us: us(ru.ru_utime),
            system_us: us(ru.ru_stime),
        }
    }

    pub fn since(self, start: CpuTime) -> CpuTime {
        CpuTime {
            user_us: self.user_us.saturating_sub(start.user_us),
            system_us: self.system_us.saturating_sub(start.system_us),
        }
    }
}

/// Time the calling thread has spent runnable but waiting for a CPU, in ns (the second field of
/// `/proc/thread-self/schedstat`); `None` where the kernel does not report it.
pub fn runqueue_wait_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

/// Raises the open-file soft limit to the hard limit (one fd per connection).
pub fn raise_fd_limit() {
    // SAFETY: rlimit is plain data; failure leaves the limit as it was.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && rl.rlim_cur < rl.rlim_max {
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
    }
}

/// A `timerfd` on `CLOCK_MONOTONIC` (the clock of [`now_ns`]), armed at absolute times: the
/// event loop's wake-up for the open-loop schedule with nanosecond resolution, where epoll's own
/// timeout has only milliseconds.
pub struct TimerFd {
    fd: std::os::unix::io::RawFd,
}

impl TimerFd {
    pub fn new() -> io::Result<TimerFd> {
        // SAFETY: plain system call; the result is checked.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(TimerFd { fd })
    }

    pub fn raw(&self) -> std::os::unix::io::RawFd {
        self.fd
    }

    /// Fires once at `at_ns` (a [`now_ns`] value; a time already past fires at once);
    /// `u64::MAX` disarms.
    pub fn set(&self, at_ns: u64) -> io::Result<()> {
        let ts = |ns: u64| libc::timespec {
            tv_sec: (ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (ns % 1_000_000_000) as libc::c_long,
        };
        let value = if at_ns == u64::MAX {
            ts(0)
        } else {
            ts(at_ns.max(1))
        };
        let spec = libc::itimerspec {
            it_interval: ts(0),
            it_value: value,
        };
        // SAFETY: `spec` is a valid itimerspec; the old value is not asked for.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd,
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for TimerFd {
    fn drop(&mut self) {
        // SAFETY: the fd is owned by this value and closed once.
        unsafe { libc::close(self.fd) };
    }
}

/// Wall-clock seconds since the Unix epoch that correspond to the [`now_ns`] value `mono_ns`.
pub fn epoch_seconds_at(mono_ns: u64) -> f64 {
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let now = now_ns();
    wall - (now as f64 - mono_ns as f64) / 1e9
}
