//! The `postlens` binary: parse the command line, hand over to the library.

#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: split::Split = split::Split;

/// The static musl builds (the binaries that ship) allocate small blocks
/// with dlmalloc and large ones with musl's malloc.
///
/// musl's own malloc returns each emptied group of small blocks to the
/// kernel and serialises the ingesting and writing threads on one slow
/// lock: a 1M-line import made 12,000 mmap/munmap pairs and took 1.5-1.8 s
/// (0.65 s with glibc). dlmalloc (pure Rust; the allocator of Rust's own
/// wasm std) keeps freed memory for reuse, but all of it, large blocks
/// included, in segments it rarely gives back: alone it took the daemon's
/// soak from 22.7 to 26.4 MiB of RSS (the budget is 24). Large blocks (raw
/// text, encoded blocks, read buffers: few, and long-lived or reused) are
/// therefore left to musl, which maps each one and unmaps it when freed.
/// mimalloc was tried too: as fast, but 66-80 MiB of RSS.
#[cfg(target_env = "musl")]
mod split {
    #![expect(unsafe_code, reason = "a global allocator is an unsafe trait; its small-block heap is a shared cell behind a lock")]

    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::UnsafeCell;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Blocks of this size and up go to musl: its own threshold for
    /// mapping a block by itself.
    const LARGE: usize = 128 * 1024;

    pub(crate) struct Split;

    fn large(size: usize) -> bool {
        size >= LARGE
    }

    /// The small blocks' dlmalloc heap behind a spin lock. (dlmalloc's own
    /// global heap locks a pthread mutex: musl's lock and unlock calls cost
    /// 2 % of an import's instructions, and under contention between the
    /// ingesting and writing threads its slow path took 13 % of the
    /// samples.) Critical sections are one malloc or free: a waiter spins
    /// briefly, then yields its core.
    struct Heap {
        locked: AtomicBool,
        heap: UnsafeCell<dlmalloc::Dlmalloc>,
    }

    // SAFETY: `heap` is only reached through `Heap::with`, which holds the
    // lock for the whole access, so no two threads use it at once.
    unsafe impl Sync for Heap {}

    static HEAP: Heap = Heap { locked: AtomicBool::new(false), heap: UnsafeCell::new(dlmalloc::Dlmalloc::new()) };

    impl Heap {
        #[inline]
        fn with<R>(&self, f: impl FnOnce(&mut dlmalloc::Dlmalloc) -> R) -> R {
            let mut spins = 0u32;
            while self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
                while self.locked.load(Ordering::Relaxed) {
                    if spins < 100 {
                        spins += 1;
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                }
            }
            // SAFETY: the lock is held: this is the only reference.
            let r = f(unsafe { &mut *self.heap.get() });
            self.locked.store(false, Ordering::Release);
            r
        }
    }

    // SAFETY: every block is allocated and freed by the same allocator: the
    // choice depends only on the layout's size, which `GlobalAlloc`
    // guarantees is the same at `dealloc` (and at `realloc`, whose new size
    // chooses the allocator of the new block) as at allocation. musl's
    // malloc meets `GlobalAlloc`'s contract, and so does the dlmalloc heap,
    // reached only under its lock (see `Heap`).
    unsafe impl GlobalAlloc for Split {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { if large(layout.size()) { System.alloc(layout) } else { HEAP.with(|h| h.malloc(layout.size(), layout.align())) } }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: as `alloc`.
            unsafe {
                if large(layout.size()) { System.alloc_zeroed(layout) } else { HEAP.with(|h| h.calloc(layout.size(), layout.align())) }
            }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` came from the allocator this size chooses.
            unsafe {
                if large(layout.size()) { System.dealloc(ptr, layout) } else { HEAP.with(|h| h.free(ptr, layout.size(), layout.align())) }
            }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: within one allocator, forwarded as is; across the
            // threshold, a new block from the other one (`new_size` with the
            // old alignment is a valid layout: the caller guarantees it does
            // not overflow), the smaller size copied, the old block freed.
            unsafe {
                match (large(layout.size()), large(new_size)) {
                    (false, false) => HEAP.with(|h| h.realloc(ptr, layout.size(), layout.align(), new_size)),
                    (true, true) => System.realloc(ptr, layout, new_size),
                    _ => {
                        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                        let new = self.alloc(new_layout);
                        if !new.is_null() {
                            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                            self.dealloc(ptr, layout);
                        }
                        new
                    }
                }
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    let args = postlens::config::rewrite_lightmeter_args(std::env::args_os());
    let args: Vec<String> = args.into_iter().map(|a| a.to_string_lossy().into_owned()).collect();
    postlens::cli::run(&args)
}
