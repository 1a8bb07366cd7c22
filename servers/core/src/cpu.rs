//! CPU lists (`1,3,5`, `0-3`) and pinning of the calling thread.

use std::{io, mem};

/// One past the highest CPU number a `cpu_set_t` can hold.
const MAX_CPUS: usize = libc::CPU_SETSIZE as usize;

/// Parses a CPU list such as `1,3,5` or `0-3,8`. Order is kept and duplicates are allowed, since
/// worker *i* runs on the *i*-th entry and an oversubscribed run repeats CPUs.
pub fn parse_list(list: &str) -> Result<Vec<usize>, String> {
    if list.trim().is_empty() {
        return Err("empty CPU list".into());
    }
    let mut cpus = Vec::new();
    for item in list.split(',') {
        let (first, last) = match item.split_once('-') {
            Some((first, last)) => (parse_cpu(first)?, parse_cpu(last)?),
            None => {
                let cpu = parse_cpu(item)?;
                (cpu, cpu)
            }
        };
        if first > last {
            return Err(format!("descending range '{item}'"));
        }
        cpus.extend(first..=last);
    }
    Ok(cpus)
}

fn parse_cpu(s: &str) -> Result<usize, String> {
    match s.trim().parse() {
        Ok(cpu) if cpu < MAX_CPUS => Ok(cpu),
        Ok(cpu) => Err(format!(
            "CPU {cpu} is out of range (at most {})",
            MAX_CPUS - 1
        )),
        Err(_) => Err(format!("'{s}' is not a CPU number")),
    }
}

/// Pins the calling thread (not the whole process) to `cpu`.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    confine_current_thread(&[cpu])
}

/// Confines the calling thread to `cpus` as a set (it may run on any of them), and so every
/// thread it creates from then on: Linux threads inherit their creator's affinity.
pub fn confine_current_thread(cpus: &[usize]) -> io::Result<()> {
    if cpus.iter().any(|&cpu| cpu >= MAX_CPUS) {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    // SAFETY: cpu_set_t is plain bits, valid when zeroed; every CPU is checked to be in range for
    // CPU_SET; pid 0 names the calling thread and the size is that of the set passed.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, mem::size_of_val(&set), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The CPUs the calling thread may run on (its affinity mask, e.g. as narrowed by `taskset`).
pub fn allowed() -> io::Result<Vec<usize>> {
    // SAFETY: as in `confine_current_thread`; the kernel writes at most `size_of_val(&set)` bytes.
    unsafe {
        let mut set: libc::cpu_set_t = mem::zeroed();
        if libc::sched_getaffinity(0, mem::size_of_val(&set), &mut set) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((0..MAX_CPUS)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_ranges_keep_order_and_duplicates() {
        assert_eq!(parse_list("1,3,5"), Ok(vec![1, 3, 5]));
        assert_eq!(parse_list("0-3"), Ok(vec![0, 1, 2, 3]));
        assert_eq!(parse_list("4,0-1,1"), Ok(vec![4, 0, 1, 1]));
        assert_eq!(parse_list("2-2"), Ok(vec![2]));
        assert_eq!(parse_list(" 0 , 1 "), Ok(vec![0, 1]));
    }

    #[test]
    fn bad_lists_are_rejected() {
        for bad in [
            "",
            " ",
            "a",
            "1,",
            ",1",
            "3-1",
            "1-",
            "-1",
            "1-2-3",
            "0x1",
            "1024",
            "99999999999999999999",
        ] {
            assert!(parse_list(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_current_thread_can_pin_to_an_allowed_cpu() {
        let cpu = allowed().unwrap()[0];
        // Pin a scratch thread so that the test runner's threads keep their affinity.
        std::thread::spawn(move || {
            pin_current_thread(cpu).unwrap();
            assert_eq!(allowed().unwrap(), vec![cpu]);
        })
        .join()
        .unwrap();
        assert!(pin_current_thread(MAX_CPUS).is_err());
    }
}
