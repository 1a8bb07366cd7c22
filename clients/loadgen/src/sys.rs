//! The few OS calls the load generator needs: clock, CPU pinning, thread CPU time, fd limit.

use std::io;

/// Monotonic time in nanoseconds. `CLOCK_MONOTONIC` is answered by the vDSO (no system call)
/// with the TSC clocksource, which is about as cheap as a trustworthy clock gets.
#[inline]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
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
