//! CPU affinity of the calling thread ([sched_setaffinity(2)](https://man7.org/linux/man-pages/man2/sched_setaffinity.2.html)):
//! the benchmark harness pins itself and its peer processes with it.

use std::io;

/// A set of CPUs.
#[derive(Clone, Copy)]
pub(crate) struct CpuSet(libc::cpu_set_t);

impl std::fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CpuSet({:?})", self.cpus())
    }
}

impl CpuSet {
    fn empty() -> CpuSet {
        // SAFETY: an all-zero cpu_set_t is the empty set, a valid value.
        CpuSet(unsafe { std::mem::zeroed() })
    }

    /// The calling thread's affinity mask.
    pub(crate) fn current() -> io::Result<CpuSet> {
        let mut s = CpuSet::empty();
        // SAFETY: `s.0` is writable and of the size we pass; pid 0 is the calling thread.
        let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut s.0) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(s)
    }

    /// The set of the one CPU `cpu` (empty if `cpu` is past what a set holds).
    pub(crate) fn single(cpu: usize) -> CpuSet {
        let mut s = CpuSet::empty();
        if cpu < libc::CPU_SETSIZE as usize {
            // SAFETY: `cpu` is below CPU_SETSIZE, checked above.
            unsafe { libc::CPU_SET(cpu, &mut s.0) };
        }
        s
    }

    /// The CPUs in the set, in ascending order.
    pub(crate) fn cpus(&self) -> Vec<usize> {
        // SAFETY: every index tested is below CPU_SETSIZE.
        (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &self.0) }).collect()
    }

    /// Makes this set the calling thread's affinity mask.
    pub(crate) fn apply(&self) -> io::Result<()> {
        // SAFETY: `self.0` is a valid cpu_set_t of the size we pass; pid 0 is the calling thread.
        let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.0) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_holds_one_cpu_and_the_current_mask_is_not_empty() {
        assert_eq!(CpuSet::single(3).cpus(), [3]);
        assert!(CpuSet::single(usize::MAX).cpus().is_empty());
        let now = CpuSet::current().unwrap();
        assert!(!now.cpus().is_empty());
        now.apply().unwrap();
    }
}
