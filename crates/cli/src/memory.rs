//! Giving the memory of large values back to the system.
//!
//! glibc's `malloc` serves a block of 128 KiB or more with its own `mmap`,
//! unmapped when freed, but raises that threshold to the size of each such
//! block freed (up to 32 MiB). After the first multi-megabyte value (an Open
//! WebUI chat of 14 MB), every later copy of a value that size — the row
//! read, its encoding, the canonical JSON of the verification — comes from
//! the heap of the thread that allocates it, and stays there once freed:
//! the peak grows with the number of threads times the largest value
//! (without this, the integration test of two 14.7 MiB documents peaked at
//! 8.4 × the value over the run without them; about 3 × with it).
//! [`give_back_large_blocks`] fixes the threshold, so a large value's
//! memory returns to the system as soon as it is freed.

/// Blocks from this size up get their own mapping, returned when freed.
/// Above the 1.25 MiB chunks a load sends to PostgreSQL, which stay in
/// the heap and are reused.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 4 << 20;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD`] (see the module
/// documentation); does nothing with other C libraries, whose allocators
/// do not raise it. Call first thing in `main`, before any thread starts.
pub fn give_back_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a setting of the allocator; it is called
    // before any other thread exists, so no allocation runs concurrently.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}
