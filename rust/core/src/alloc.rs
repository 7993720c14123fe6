//! The allocator the addon's library (and `core-echo`, the floor it is measured against) installs
//! as Rust's global allocator: the system's `malloc` for everything below [`MAPPED_FROM`], and
//! pages mapped for that one allocation (and unmapped when it is freed) from there up, on Linux
//! with glibc. Elsewhere, and below the line, it is [`std::alloc::System`].
//!
//! Why: a burst of large messages (a thousand clients sending 1 MiB each) used to leave the
//! process 7-42 MiB larger for good in 7 of 9 runs on one machine, although every buffer had been
//! freed and `malloc_trim` had run (`bench/run.py --only memory`). glibc maps an allocation of
//! 128 KiB or more on its own, but when such a mapping is freed it raises that line to the freed
//! size (up to 32 MiB) and keeps twice as much free at the top of each thread's arena; from then
//! on large buffers come out of the I/O thread's arena, whose free top `malloc_trim` never hands
//! back (it trims the main arena's top and the free chunks in bins only). Mapping large
//! allocations here means glibc never sees them: its lines stay where they were, and a large
//! buffer's memory goes back to the system the moment it is freed, from whichever thread frees
//! it. Only this library's allocations are affected; the game's (Godot's) stay as they are.
//!
//! The price is a system call to map and one to unmap per large buffer (growing one is a
//! `mremap`, which moves page tables, not bytes). Buffers this large are a message of 128 KiB or
//! more, or a connection's queue that has grown that far; the per-message paths of small
//! messages never get here.

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations of this many bytes or more are mapped on their own (glibc's own initial line).
pub const MAPPED_FROM: usize = 128 * 1024;

/// The global allocator (see the module's documentation).
pub struct Allocator;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod mapped {
    use std::alloc::Layout;

    /// Whether `layout` is served by its own mapping. Mappings are page-aligned, so any alignment
    /// up to 4 KiB (every page size is at least that) is met; larger alignments go to `System`.
    #[inline]
    pub(super) fn is_mapped(layout: &Layout) -> bool {
        layout.size() >= super::MAPPED_FROM && layout.align() <= 4096
    }

    pub(super) unsafe fn map(size: usize) -> *mut u8 {
        // SAFETY: an anonymous private mapping at an address the kernel chooses.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            p.cast()
        }
    }

    pub(super) unsafe fn unmap(ptr: *mut u8, size: usize) {
        // SAFETY: `ptr` is a mapping of `size` bytes made by `map` or `remap` (the caller's
        // contract: a layout is freed with the size it was allocated with).
        unsafe { libc::munmap(ptr.cast(), size) };
    }

    pub(super) unsafe fn remap(ptr: *mut u8, old: usize, new: usize) -> *mut u8 {
        // SAFETY: `ptr` is a mapping of `old` bytes; the kernel may move it (its contents move
        // with it).
        let p = unsafe { libc::mremap(ptr.cast(), old, new, libc::MREMAP_MAYMOVE) };
        if p == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            p.cast()
        }
    }
}

// SAFETY: every block is either System's (returned to System, resized by System) or a mapping of
// exactly `layout.size()` bytes (unmapped with that size), decided by the layout alone, which
// `GlobalAlloc` guarantees is the same at `dealloc`/`realloc` as at allocation; mappings are
// page-aligned and zero-filled.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        if mapped::is_mapped(&layout) {
            // SAFETY: see `map`.
            return unsafe { mapped::map(layout.size()) };
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        if mapped::is_mapped(&layout) {
            // SAFETY: see `map` (fresh anonymous pages are zero).
            return unsafe { mapped::map(layout.size()) };
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        if mapped::is_mapped(&layout) {
            // SAFETY: a block of this layout was mapped by `alloc` or `realloc`.
            return unsafe { mapped::unmap(ptr, layout.size()) };
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // SAFETY (whole block): `ptr` was allocated with `layout` by this allocator, and
            // `new_size` with `layout.align()` is a valid layout (GlobalAlloc's contract).
            let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
            match (mapped::is_mapped(&layout), mapped::is_mapped(&new)) {
                (true, true) => return unsafe { mapped::remap(ptr, layout.size(), new_size) },
                (false, false) => {}
                _ => {
                    // Across the line: a new block of the other kind, the bytes both hold, and
                    // the old block freed (only if the new one was had).
                    let to = unsafe { self.alloc(new) };
                    if !to.is_null() {
                        unsafe {
                            std::ptr::copy_nonoverlapping(ptr, to, layout.size().min(new_size));
                            self.dealloc(ptr, layout);
                        }
                    }
                    return to;
                }
            }
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path of the allocator, through its own interface: small and large blocks, growing
    /// and shrinking within each kind and across the line, zeroed blocks, large alignments.
    #[test]
    fn blocks_keep_their_bytes_across_every_resize() {
        let a = Allocator;
        let sizes = [
            16,
            4096,
            MAPPED_FROM - 1,
            MAPPED_FROM,
            MAPPED_FROM + 1,
            3 * MAPPED_FROM,
            1 << 20,
        ];
        for &from in &sizes {
            for &to in &sizes {
                for align in [1usize, 8, 64, 4096, 8192] {
                    let layout = Layout::from_size_align(from, align).unwrap();
                    unsafe {
                        let p = a.alloc(layout);
                        assert!(!p.is_null());
                        assert_eq!(p as usize % align, 0);
                        for i in 0..from {
                            *p.add(i) = (i % 251) as u8;
                        }
                        let q = a.realloc(p, layout, to);
                        assert!(!q.is_null());
                        assert_eq!(q as usize % align, 0);
                        for i in 0..from.min(to) {
                            assert_eq!(*q.add(i), (i % 251) as u8, "{from} -> {to}, align {align}, byte {i}");
                        }
                        a.dealloc(q, Layout::from_size_align(to, align).unwrap());
                        let z = a.alloc_zeroed(layout);
                        assert!((0..from).all(|i| *z.add(i) == 0));
                        a.dealloc(z, layout);
                    }
                }
            }
        }
    }

    /// On Linux with glibc, a large block is a mapping of its own: freeing it hands its pages
    /// back at once (the process's mappings shrink), which is the point of this allocator.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn a_large_block_is_its_own_mapping_and_goes_back_when_freed() {
        // The line of /proc/self/maps holding `p` (other tests' threads map and unmap too, so
        // what is compared after the free is that exact range, not any mapping at `p`).
        fn mapping_of(p: *mut u8) -> Option<String> {
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
            maps.lines()
                .map(|l| l.split_whitespace().next().unwrap().to_string())
                .find(|range| {
                    let (lo, hi) = range.split_once('-').unwrap();
                    let (lo, hi) = (
                        usize::from_str_radix(lo, 16).unwrap(),
                        usize::from_str_radix(hi, 16).unwrap(),
                    );
                    (lo..hi).contains(&(p as usize))
                })
        }
        let a = Allocator;
        let layout = Layout::from_size_align(4 << 20, 1).unwrap();
        unsafe {
            let p = a.alloc(layout);
            assert_eq!(p as usize % 4096, 0, "a mapping starts on a page");
            p.write_bytes(7, layout.size());
            let range = mapping_of(p).expect("the block is mapped");
            a.dealloc(p, layout);
            assert_ne!(mapping_of(p), Some(range), "the block's pages were not handed back");
        }
    }
}
