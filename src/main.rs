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
/// therefore left to musl, which maps each one and unmaps it when freed;
/// only `postlens import` keeps a few freed ones for reuse (`Kept`).
/// Raising the threshold to 1 MiB instead made the import as fast but took
/// the daemon's soak to 25.3 MiB. mimalloc was tried too: as fast, but
/// 66-80 MiB of RSS.
#[cfg(target_env = "musl")]
mod split {
    #![expect(
        unsafe_code,
        reason = "a global allocator is an unsafe trait; its small-block heap is a shared cell behind a lock, and each thread keeps freed blocks in lists threaded through them"
    )]

    use postlens::limits::{BULK_IMPORT, IMPORT_KEPT_BLOCKS, IMPORT_KEPT_BYTES};
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::UnsafeCell;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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
    /// samples.) Critical sections are one malloc or free, or one thread's
    /// batch of them (`Cache`): a waiter spins briefly, then yields its core.
    static HEAP: Locked<dlmalloc::Dlmalloc> = Locked::new(dlmalloc::Dlmalloc::new());

    /// A value behind a spin lock.
    struct Locked<T> {
        locked: AtomicBool,
        cell: UnsafeCell<T>,
    }

    // SAFETY: `cell` is only reached through `Locked::with`, which holds the
    // lock for the whole access, so no two threads use it at once. The
    // values are the allocator's own heap state (dlmalloc, addresses of
    // free blocks), valid from any thread.
    unsafe impl<T> Sync for Locked<T> {}

    impl<T> Locked<T> {
        const fn new(v: T) -> Self {
            Self { locked: AtomicBool::new(false), cell: UnsafeCell::new(v) }
        }

        #[inline]
        fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
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
            let r = f(unsafe { &mut *self.cell.get() });
            self.locked.store(false, Ordering::Release);
            r
        }
    }

    /// Freed large blocks kept for the next large allocation while
    /// `postlens import` runs (`limits::BULK_IMPORT`), instead of being
    /// unmapped: a 1M-line import mapped some 900 blocks of 128-330 KiB
    /// (batches of records, encoded blocks, the serialised tracker state),
    /// each costing a page fault per 4 KiB and, when unmapped, a TLB
    /// flush on both cores. Bounds: `IMPORT_KEPT_BLOCKS` blocks and
    /// `IMPORT_KEPT_BYTES` bytes (musl's usable sizes); a block that does
    /// not fit is freed as before. The daemon keeps none.
    struct Kept {
        /// (block, usable size); null: an empty slot.
        blocks: [(*mut u8, usize); IMPORT_KEPT_BLOCKS],
        bytes: usize,
    }

    static KEPT: Locked<Kept> = Locked::new(Kept { blocks: [(std::ptr::null_mut(), 0); IMPORT_KEPT_BLOCKS], bytes: 0 });

    impl Kept {
        /// The smallest kept block of at least `size` bytes, taken out.
        fn take(&mut self, size: usize) -> Option<*mut u8> {
            let slot = self.blocks.iter_mut().filter(|(p, u)| !p.is_null() && *u >= size).min_by_key(|(_, u)| *u)?;
            let (p, u) = std::mem::replace(slot, (std::ptr::null_mut(), 0));
            self.bytes -= u;
            Some(p)
        }

        /// Keeps block `p` of `usable` bytes, if there is room.
        fn put(&mut self, p: *mut u8, usable: usize) -> bool {
            if self.bytes + usable > IMPORT_KEPT_BYTES {
                return false;
            }
            let Some(slot) = self.blocks.iter_mut().find(|b| b.0.is_null()) else { return false };
            *slot = (p, usable);
            self.bytes += usable;
            true
        }
    }

    /// Whether a large block of `layout` may come from, or go to, `KEPT`:
    /// during an import, and when musl's plain `malloc` serves the layout
    /// (Rust's `System` uses it up to two words' alignment), so that any
    /// kept block serves it and `free` or `realloc` take it.
    fn keeps(layout: Layout) -> bool {
        layout.align() <= ALIGN && BULK_IMPORT.load(Ordering::Relaxed)
    }

    /// A large block: a kept one, else musl's.
    ///
    /// # Safety
    /// As `GlobalAlloc::alloc`, for a large layout.
    unsafe fn large_alloc(layout: Layout) -> *mut u8 {
        if keeps(layout)
            && let Some(p) = KEPT.with(|k| k.take(layout.size()))
        {
            return p;
        }
        // SAFETY: the caller's guarantee.
        unsafe { System.alloc(layout) }
    }

    /// Frees a large block, or keeps it.
    ///
    /// # Safety
    /// As `GlobalAlloc::dealloc`, for a large layout.
    unsafe fn large_free(ptr: *mut u8, layout: Layout) {
        if keeps(layout) {
            // SAFETY: `ptr` is a live block from musl's `malloc` (`keeps`).
            let usable = unsafe { libc::malloc_usable_size(ptr.cast()) };
            if KEPT.with(|k| k.put(ptr, usable)) {
                return;
            }
        }
        // SAFETY: the caller's guarantee.
        unsafe { System.dealloc(ptr, layout) }
    }

    // Each thread keeps the small blocks it frees in per-size lists and
    // allocates from them first; an empty list is refilled `REFILL` blocks
    // at a time, and a list longer than `KEEP` hands `KEEP / 2` back, each
    // under one lock. Without these lists every allocation and free took
    // the heap's lock, which bounced between the ingesting thread (which
    // allocates the records) and the writer (which frees them): spinning
    // for it was about 11 % of a static import's samples, and the lock
    // with dlmalloc 9 % of the parse loop's instructions.
    //
    // A size class is a block size dlmalloc hands out exactly (a chunk of
    // a whole number of alignment steps, less its one-word header), so
    // rounding a request up to its class wastes nothing; a class's blocks
    // are always allocated with the class's full size, so any of them
    // serves any request of that class.
    //
    // Bounds: a thread holds at most `KEEP` + 1 blocks of each class, so
    // 33 × (24 + 40 + … + 264) bytes = 74 KiB (38 KiB on 32-bit ARM). A
    // thread's lists go back to the heap when it ends (`thread_ended`, a
    // pthread key destructor: musl's key functions do not allocate); if
    // that cannot be arranged the thread keeps none.

    /// dlmalloc's alignment: two words.
    const ALIGN: usize = 2 * size_of::<usize>();
    /// dlmalloc's smallest block: a four-word chunk less its header.
    const MIN_USABLE: usize = 3 * size_of::<usize>();
    /// Cached size classes: blocks up to 264 bytes (132 on 32-bit ARM),
    /// which holds most strings, boxed records and small vectors.
    const CLASSES: usize = 16;
    /// Blocks a thread keeps per class before handing half back.
    const KEEP: u32 = 32;
    /// Blocks taken from the heap at once into an empty class.
    const REFILL: u32 = 16;

    /// Block size of class `c`.
    const fn usable(c: usize) -> usize {
        MIN_USABLE + c * ALIGN
    }

    /// The class serving `layout`, if it is cached.
    #[inline]
    fn class(layout: Layout) -> Option<usize> {
        let c = (layout.size() + size_of::<usize>()).div_ceil(ALIGN).saturating_sub(2);
        (c < CLASSES && layout.align() <= ALIGN).then_some(c)
    }

    /// The size to ask dlmalloc for: a class's full size, or as asked.
    fn request(layout: Layout) -> usize {
        class(layout).map_or(layout.size(), usable)
    }

    const NEW: u8 = 0;
    const CACHING: u8 = 1;
    /// Frees and allocations go straight to the heap: the thread's end
    /// could not be hooked, or it is ending.
    const DIRECT: u8 = 2;

    /// A thread's freed small blocks: per class, a list threaded through
    /// the blocks' first word.
    struct Cache {
        heads: [*mut u8; CLASSES],
        counts: [u32; CLASSES],
        state: u8,
    }

    thread_local! {
        // Const-initialised and without a destructor: reaching it never
        // allocates (no registration), so the allocator may use it.
        static CACHE: UnsafeCell<Cache> = const { UnsafeCell::new(Cache { heads: [std::ptr::null_mut(); CLASSES], counts: [0; CLASSES], state: NEW }) };
    }

    /// The pthread key whose destructor empties an ending thread's cache,
    /// plus one (0: not created yet; `usize::MAX`: creation failed).
    static KEY: AtomicUsize = AtomicUsize::new(0);
    static KEY_LOCK: AtomicBool = AtomicBool::new(false);

    /// Arranges for `thread_ended` to run when this thread ends.
    fn register() -> bool {
        let mut key = KEY.load(Ordering::Acquire);
        if key == 0 {
            while KEY_LOCK.swap(true, Ordering::Acquire) {
                std::hint::spin_loop();
            }
            key = KEY.load(Ordering::Acquire);
            if key == 0 {
                let mut k: libc::pthread_key_t = 0;
                // SAFETY: `k` is a valid place for the key; the destructor
                // is a plain function valid for the life of the process.
                let ok = unsafe { libc::pthread_key_create(&raw mut k, Some(thread_ended)) } == 0;
                key = match usize::try_from(k) {
                    Ok(k) if ok && k < usize::MAX - 1 => k + 1,
                    _ => usize::MAX,
                };
                KEY.store(key, Ordering::Release);
            }
            KEY_LOCK.store(false, Ordering::Release);
        }
        if key == usize::MAX {
            return false;
        }
        let Ok(k) = libc::pthread_key_t::try_from(key - 1) else { return false };
        // SAFETY: `k` is a key of this process; any non-null value makes
        // the destructor run.
        unsafe { libc::pthread_setspecific(k, std::ptr::dangling::<u8>().cast()) == 0 }
    }

    /// Empties the ending thread's cache; later frees and allocations go
    /// straight to the heap.
    extern "C" fn thread_ended(_: *mut std::ffi::c_void) {
        CACHE.with(|k| {
            // SAFETY: this thread's own cache; the destructor does not run
            // inside the allocator, so it is not otherwise borrowed.
            let k = unsafe { &mut *k.get() };
            k.state = DIRECT;
            for c in 0..CLASSES {
                release(k, c, k.counts[c]);
            }
        });
    }

    /// The block after `p` in its list.
    ///
    /// # Safety
    /// `p` is a listed block.
    #[expect(clippy::cast_ptr_alignment, reason = "dlmalloc's blocks are two-word aligned")]
    unsafe fn next(p: *mut u8) -> *mut u8 {
        // SAFETY: a listed block holds the next one's address in its first word.
        unsafe { p.cast::<*mut u8>().read() }
    }

    /// Makes `p`, a free block, point at `next`.
    ///
    /// # Safety
    /// `p` is a free block of this heap (at least three words, aligned).
    #[expect(clippy::cast_ptr_alignment, reason = "dlmalloc's blocks are two-word aligned")]
    unsafe fn link(p: *mut u8, next: *mut u8) {
        // SAFETY: the caller's guarantee.
        unsafe { p.cast::<*mut u8>().write(next) }
    }

    /// Hands `n` blocks of class `c` back to the heap, under one lock.
    fn release(k: &mut Cache, c: usize, n: u32) {
        if n == 0 {
            return;
        }
        HEAP.with(|h| {
            for _ in 0..n {
                let p = k.heads[c];
                // SAFETY: the list holds `counts[c]` ≥ `n` blocks of this
                // heap, each with the next one's address in its first word.
                unsafe {
                    k.heads[c] = next(p);
                    h.c_free(p);
                }
            }
        });
        k.counts[c] -= n;
    }

    /// Whether this thread may cache blocks (hooking its end the first time).
    fn caching(k: &mut Cache) -> bool {
        if k.state == NEW {
            k.state = if register() { CACHING } else { DIRECT };
        }
        k.state == CACHING
    }

    /// A block of class `c`: from the thread's list, else from the heap.
    fn cached_alloc(c: usize) -> *mut u8 {
        CACHE.with(|k| {
            // SAFETY: this thread's own cache, borrowed only here (nothing
            // below re-enters the allocator).
            let k = unsafe { &mut *k.get() };
            let p = k.heads[c];
            if !p.is_null() {
                // SAFETY: a listed block holds the next one's address.
                k.heads[c] = unsafe { next(p) };
                k.counts[c] -= 1;
                return p;
            }
            let size = usable(c);
            if !caching(k) {
                // SAFETY: `size` is non-zero.
                return HEAP.with(|h| unsafe { h.c_malloc(size) });
            }
            HEAP.with(|h| {
                // SAFETY: as above; each extra block is listed, its first
                // word (it holds at least three) linking the next.
                unsafe {
                    let first = h.c_malloc(size);
                    if !first.is_null() {
                        while k.counts[c] < REFILL - 1 {
                            let q = h.c_malloc(size);
                            if q.is_null() {
                                break;
                            }
                            link(q, k.heads[c]);
                            k.heads[c] = q;
                            k.counts[c] += 1;
                        }
                    }
                    first
                }
            })
        })
    }

    /// Frees a block of class `c` into the thread's list.
    ///
    /// # Safety
    /// `p` is a live block of class `c` from this heap, not used again.
    unsafe fn cached_free(p: *mut u8, c: usize) {
        CACHE.with(|k| {
            // SAFETY: as in `cached_alloc`.
            let k = unsafe { &mut *k.get() };
            if !caching(k) {
                // SAFETY: the caller's guarantee.
                HEAP.with(|h| unsafe { h.c_free(p) });
                return;
            }
            // SAFETY: the block is ours now and holds at least three words.
            unsafe { link(p, k.heads[c]) };
            k.heads[c] = p;
            k.counts[c] += 1;
            if k.counts[c] > KEEP {
                release(k, c, KEEP / 2);
            }
        });
    }

    // SAFETY: every block is allocated and freed by the same allocator: the
    // choice depends only on the layout's size, which `GlobalAlloc`
    // guarantees is the same at `dealloc` (and at `realloc`, whose new size
    // chooses the allocator of the new block) as at allocation. musl's
    // malloc meets `GlobalAlloc`'s contract, and so does the dlmalloc heap,
    // reached only under its lock (see `Heap`); a block of a cached class
    // has the class's full size wherever it came from (`request`), so a
    // listed block serves any layout of its class, and dlmalloc's free and
    // realloc take any of its blocks whatever size was asked.
    //
    // Not inlined: the program is one LTO module, and the size check and
    // the lock inlined at every allocation made `make cross`'s x86_64
    // binary 0.22 MB larger (over its 6 MB budget), for no measured speed.
    unsafe impl GlobalAlloc for Split {
        #[inline(never)]
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            if let Some(c) = class(layout) {
                return cached_alloc(c);
            }
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { if large(layout.size()) { large_alloc(layout) } else { HEAP.with(|h| h.malloc(layout.size(), layout.align())) } }
        }

        #[inline(never)]
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            if let Some(c) = class(layout) {
                let p = cached_alloc(c);
                if !p.is_null() {
                    // SAFETY: the block holds at least `layout.size()` bytes.
                    unsafe { p.write_bytes(0, layout.size()) };
                }
                return p;
            }
            // SAFETY: as `alloc`.
            unsafe {
                if large(layout.size()) { System.alloc_zeroed(layout) } else { HEAP.with(|h| h.calloc(layout.size(), layout.align())) }
            }
        }

        #[inline(never)]
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` came from the allocator (and, when cached, the
            // class) this layout chooses.
            unsafe {
                if let Some(c) = class(layout) {
                    cached_free(ptr, c);
                } else if large(layout.size()) {
                    large_free(ptr, layout);
                } else {
                    HEAP.with(|h| h.c_free(ptr));
                }
            }
        }

        #[inline(never)]
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: `new_size` with the old alignment is a valid layout
            // (the caller guarantees it does not overflow).
            let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
            if let (Some(a), Some(b)) = (class(layout), class(new_layout))
                && a == b
            {
                // The block already has the class's full size.
                return ptr;
            }
            // SAFETY: within the heap, resized under its lock (to the new
            // layout's full class size when it has one); across the
            // threshold, a new block from the other allocator, the smaller
            // size copied, the old block freed.
            unsafe {
                match (large(layout.size()), large(new_size)) {
                    (false, false) => HEAP.with(|h| h.realloc(ptr, request(layout), layout.align(), request(new_layout))),
                    (true, true) => System.realloc(ptr, layout, new_size),
                    _ => {
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

    #[cfg(test)]
    mod tests {
        use super::*;

        static ALLOC_UNDER_TEST: Split = Split;

        /// Each size maps to the smallest class that holds it.
        #[test]
        fn classes_are_tight() {
            for size in 1..=usable(CLASSES - 1) + 64 {
                let l = Layout::from_size_align(size, 1).unwrap();
                match class(l) {
                    Some(c) => {
                        assert!(usable(c) >= size, "size {size} in class {c}");
                        assert!(c == 0 || usable(c - 1) < size, "size {size} fits class {}", c - 1);
                    }
                    None => assert!(size > usable(CLASSES - 1), "size {size} not cached"),
                }
            }
            assert_eq!(class(Layout::from_size_align(8, ALIGN * 2).unwrap()), None);
        }

        /// Blocks allocated on one thread and freed on another (as records
        /// go from the ingesting thread to the writer) keep their contents
        /// while alive, and reused blocks never overlap a live one.
        #[test]
        fn blocks_cross_threads_intact() {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Box<[u8]>>>(4);
            let maker = std::thread::spawn(move || {
                let mut seed = 0x9e37_79b9_u32;
                for round in 0..400u32 {
                    let mut batch = Vec::new();
                    for i in 0..200u32 {
                        seed ^= seed << 13;
                        seed ^= seed >> 17;
                        seed ^= seed << 5;
                        let len = (seed % 600) as usize + 1;
                        let tag = (round.wrapping_mul(31).wrapping_add(i) % 251) as u8;
                        batch.push(vec![tag; len].into_boxed_slice());
                    }
                    tx.send(batch).unwrap();
                }
            });
            let mut kept: Vec<Box<[u8]>> = Vec::new();
            for batch in rx {
                for b in &batch {
                    assert!(b.iter().all(|&x| x == b[0]), "a block changed under its owner");
                }
                // Keep some alive across rounds while the rest are freed here.
                kept.extend(batch.into_iter().step_by(7));
                if kept.len() > 2000 {
                    kept.drain(..1000);
                }
                for b in &kept {
                    assert!(b.iter().all(|&x| x == b[0]), "a kept block was overwritten");
                }
            }
            maker.join().unwrap();
        }

        /// Kept large blocks: the smallest that holds a request is taken;
        /// nothing beyond the block and byte bounds is kept.
        #[test]
        fn kept_blocks_best_fit_and_bounded() {
            let mut k = Kept { blocks: [(std::ptr::null_mut(), 0); IMPORT_KEPT_BLOCKS], bytes: 0 };
            let at = |a: usize| std::ptr::without_provenance_mut::<u8>(a);
            assert!(k.put(at(0x1000), 300_000));
            assert!(k.put(at(0x2000), 140_000));
            assert!(k.put(at(0x3000), 200_000));
            assert_eq!(k.take(150_000), Some(at(0x3000)), "the smallest block that holds it");
            assert_eq!(k.take(400_000), None, "none holds it");
            assert_eq!(k.take(131_072), Some(at(0x2000)));
            assert_eq!(k.bytes, 300_000);
            assert!(!k.put(at(0x4000), IMPORT_KEPT_BYTES), "over the byte bound");
            assert_eq!(k.take(1), Some(at(0x1000)));
            assert_eq!(k.bytes, 0);
            for i in 0..IMPORT_KEPT_BLOCKS {
                assert!(k.put(at(0x1000 * (i + 1)), 1));
            }
            assert!(!k.put(at(0x99_0000), 1), "over the block bound");
            assert_eq!(k.bytes, IMPORT_KEPT_BLOCKS);
        }

        /// During an import a freed large block serves the next large
        /// allocation it can hold, contents writable end to end; before
        /// one, large blocks are freed at once. (The other tests of this
        /// binary make no large blocks that could take the kept one.)
        #[test]
        fn imports_reuse_large_blocks() {
            let big = Layout::from_size_align(300_000, 8).unwrap();
            let kept = || KEPT.with(|k| k.bytes);
            unsafe {
                let p = ALLOC_UNDER_TEST.alloc(big);
                ALLOC_UNDER_TEST.dealloc(p, big);
            }
            assert_eq!(kept(), 0, "no import: nothing kept");
            BULK_IMPORT.store(true, Ordering::Relaxed);
            // Eight-byte alignment: plain malloc on every target (16 is
            // over-aligned on 32-bit ARM, whose blocks are then never kept).
            let smaller = Layout::from_size_align(200_000, 8).unwrap();
            unsafe {
                let p = ALLOC_UNDER_TEST.alloc(big);
                p.write_bytes(7, big.size());
                ALLOC_UNDER_TEST.dealloc(p, big);
                assert!(kept() >= big.size(), "the freed block is kept");
                let q = ALLOC_UNDER_TEST.alloc(smaller);
                assert_eq!(q, p, "and serves the next large request");
                assert_eq!(kept(), 0);
                q.write_bytes(9, smaller.size());
                let r = ALLOC_UNDER_TEST.realloc(q, smaller, 600_000);
                assert!(!r.is_null());
                assert!(std::slice::from_raw_parts(r, smaller.size()).iter().all(|&b| b == 9), "realloc keeps the contents");
                r.add(599_999).write(1);
                ALLOC_UNDER_TEST.dealloc(r, Layout::from_size_align(600_000, 8).unwrap());
                // Over-aligned layouts are never kept (musl's memalign made them).
                let aligned = Layout::from_size_align(300_000, 4096).unwrap();
                let a = ALLOC_UNDER_TEST.alloc(aligned);
                assert_eq!(a.addr() % 4096, 0);
                let before = kept();
                ALLOC_UNDER_TEST.dealloc(a, aligned);
                assert_eq!(kept(), before);
            }
            BULK_IMPORT.store(false, Ordering::Relaxed);
        }

        /// A thread's cache is hooked to its end, and emptied there: after
        /// `thread_ended` it holds nothing and frees go straight back.
        #[test]
        fn thread_end_empties_the_cache() {
            std::thread::spawn(|| {
                let l = Layout::from_size_align(100, 8).unwrap();
                let c = class(l).unwrap();
                let blocks: Vec<Box<[u8]>> = (0..20).map(|_| vec![1u8; 100].into_boxed_slice()).collect();
                drop(blocks);
                let held = |c: usize| CACHE.with(|k| unsafe { (*k.get()).counts[c] });
                assert!(held(c) >= 20, "freed blocks are cached");
                let key = KEY.load(Ordering::Acquire);
                assert!(key != 0 && key != usize::MAX);
                let registered = unsafe { libc::pthread_getspecific(libc::pthread_key_t::try_from(key - 1).unwrap()) };
                assert!(!registered.is_null(), "the thread's end is hooked");
                thread_ended(std::ptr::null_mut());
                assert!((0..CLASSES).all(|c| held(c) == 0), "the cache is emptied");
                drop(vec![2u8; 100]);
                assert_eq!(held(c), 0, "frees after the end are not cached");
            })
            .join()
            .unwrap();
        }
    }
}

/// The static `x86_64` build's `memcpy`, `memmove`, `memset`, `memcmp` and
/// `bcmp`, in place of musl's.
///
/// musl's `x86_64` `memcpy` is `rep movsq` with byte loops around it, and its
/// `memcmp` compares byte by byte. The import copies mostly short runs (text
/// fields, records, line slices): in a static import musl's `memcpy` and
/// `memmove` took 22 % of perf's samples, against 4 % for glibc's. These
/// copy up to 128 bytes with overlapping unaligned loads and stores (every
/// load before any store, so they are also correct for overlapping
/// regions), up to 256 apart as two such halves (`rep movsb` takes some 30
/// cycles to start, and the parser returns 216-byte events), and longer
/// runs with `rep movsb`/`rep stosb`, which CPUs with fast strings (ERMSB,
/// since 2012) run at full speed. No loop that copies or fills a run is
/// written in Rust: the compiler would recognise it and call `memcpy` or
/// `memset`, that is itself (`fill`'s eight stores are a fixed list;
/// `compare`'s word loop is no such idiom; the built binary's five
/// functions call nothing). musl's ARM string functions are already assembly, and
/// the glibc builds keep glibc's.
#[cfg(all(target_arch = "x86_64", any(target_env = "musl", test)))]
mod mem {
    #![expect(
        unsafe_code,
        reason = "the C string functions take raw pointers; their bodies are unaligned loads, stores and string instructions"
    )]
    #![expect(clippy::cast_ptr_alignment, reason = "16-byte vectors are only loaded and stored unaligned (movdqu)")]

    use std::arch::asm;
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_set1_epi8, _mm_storeu_si128};
    use std::ffi::c_int;

    /// Copies `n` bytes from `s` to `d`; the regions may overlap.
    ///
    /// # Safety
    /// `s` is valid for reads and `d` for writes of `n` bytes.
    #[inline]
    pub(crate) unsafe fn copy(d: *mut u8, s: *const u8, n: usize) {
        // SAFETY (whole body): every access is within the first `n` bytes
        // of `s` or `d`, which the caller guarantees; unaligned accesses
        // are done with unaligned instructions.
        unsafe {
            if n <= 16 {
                if n >= 8 {
                    let (a, b) = (s.cast::<u64>().read_unaligned(), s.add(n - 8).cast::<u64>().read_unaligned());
                    d.cast::<u64>().write_unaligned(a);
                    d.add(n - 8).cast::<u64>().write_unaligned(b);
                } else if n >= 4 {
                    let (a, b) = (s.cast::<u32>().read_unaligned(), s.add(n - 4).cast::<u32>().read_unaligned());
                    d.cast::<u32>().write_unaligned(a);
                    d.add(n - 4).cast::<u32>().write_unaligned(b);
                } else if n >= 2 {
                    let (a, b) = (s.cast::<u16>().read_unaligned(), s.add(n - 2).cast::<u16>().read_unaligned());
                    d.cast::<u16>().write_unaligned(a);
                    d.add(n - 2).cast::<u16>().write_unaligned(b);
                } else if n == 1 {
                    *d = *s;
                }
                return;
            }
            let ld = |i: usize| _mm_loadu_si128(s.add(i).cast::<__m128i>());
            let st = |i: usize, x: __m128i| _mm_storeu_si128(d.add(i).cast::<__m128i>(), x);
            if n <= 32 {
                let (a, b) = (ld(0), ld(n - 16));
                st(0, a);
                st(n - 16, b);
            } else if n <= 64 {
                let (a, b, c, e) = (ld(0), ld(16), ld(n - 32), ld(n - 16));
                st(0, a);
                st(16, b);
                st(n - 32, c);
                st(n - 16, e);
            } else if n <= 128 {
                upto128(d, s, n);
            } else if n <= 256 && (d as usize).wrapping_sub(s as usize) >= n && (s as usize).wrapping_sub(d as usize) >= n {
                // Apart (the parser's 216-byte events, among others): the
                // first 128 bytes, then the last 128.
                upto128(d, s, 128);
                upto128(d.add(n - 128), s.add(n - 128), 128);
            } else if (d as usize).wrapping_sub(s as usize) >= n {
                // `d` is below `s` or past its end: forward is safe.
                asm!("rep movsb", inout("rcx") n => _, inout("rdi") d => _, inout("rsi") s => _, options(nostack, preserves_flags));
            } else {
                // `d` inside `s`: from the end down, 16 bytes at a time;
                // the first 16 (loaded before anything is stored) last.
                // A chunk's source lies below every destination written
                // before it, so none is overwritten before it is read.
                let head = ld(0);
                asm!(
                    "2:",
                    "sub {i}, 16",
                    "movdqu {x}, xmmword ptr [{s} + {i}]",
                    "movdqu xmmword ptr [{d} + {i}], {x}",
                    "cmp {i}, 16",
                    "ja 2b",
                    i = inout(reg) n => _,
                    s = in(reg) s,
                    d = in(reg) d,
                    x = out(xmm_reg) _,
                    options(nostack),
                );
                st(0, head);
            }
        }
    }

    /// [`copy`] for 65 to 128 bytes: eight loads, then eight stores.
    ///
    /// # Safety
    /// As [`copy`], and `65 <= n <= 128`.
    #[inline]
    unsafe fn upto128(d: *mut u8, s: *const u8, n: usize) {
        // SAFETY: `n >= 64`, so every access is within the first `n` bytes
        // of `s` or `d`.
        unsafe {
            let ld = |i: usize| _mm_loadu_si128(s.add(i).cast::<__m128i>());
            let st = |i: usize, x: __m128i| _mm_storeu_si128(d.add(i).cast::<__m128i>(), x);
            let (a, b, c, e) = (ld(0), ld(16), ld(32), ld(48));
            let (f, g, h, k) = (ld(n - 64), ld(n - 48), ld(n - 32), ld(n - 16));
            st(0, a);
            st(16, b);
            st(32, c);
            st(48, e);
            st(n - 64, f);
            st(n - 48, g);
            st(n - 32, h);
            st(n - 16, k);
        }
    }

    /// Sets `n` bytes at `d` to `c`.
    ///
    /// # Safety
    /// `d` is valid for writes of `n` bytes.
    #[inline]
    pub(crate) unsafe fn fill(d: *mut u8, c: u8, n: usize) {
        // SAFETY (whole body): every store is within the first `n` bytes
        // of `d`, with unaligned instructions.
        unsafe {
            if n <= 16 {
                let w = u64::from(c) * 0x0101_0101_0101_0101;
                if n >= 8 {
                    d.cast::<u64>().write_unaligned(w);
                    d.add(n - 8).cast::<u64>().write_unaligned(w);
                } else if n >= 4 {
                    #[expect(clippy::cast_possible_truncation, reason = "the low half of a repeated byte")]
                    let w = w as u32;
                    d.cast::<u32>().write_unaligned(w);
                    d.add(n - 4).cast::<u32>().write_unaligned(w);
                } else {
                    // At most three bytes; no loop (see the module's doc).
                    if n >= 1 {
                        *d = c;
                        *d.add(n - 1) = c;
                    }
                    if n == 3 {
                        *d.add(1) = c;
                    }
                }
                return;
            }
            #[expect(clippy::cast_possible_wrap, reason = "the byte's bits, as the intrinsic takes them")]
            let x = _mm_set1_epi8(c as i8);
            let st = |i: usize| _mm_storeu_si128(d.add(i).cast::<__m128i>(), x);
            if n <= 32 {
                st(0);
                st(n - 16);
            } else if n <= 64 {
                st(0);
                st(16);
                st(n - 32);
                st(n - 16);
            } else if n <= 128 {
                for i in [0, 16, 32, 48, n - 64, n - 48, n - 32, n - 16] {
                    st(i);
                }
            } else {
                asm!("rep stosb", inout("rcx") n => _, inout("rdi") d => _, in("al") c, options(nostack, preserves_flags));
            }
        }
    }

    /// Compares `n` bytes as unsigned bytes: negative, zero or positive.
    ///
    /// # Safety
    /// `a` and `b` are valid for reads of `n` bytes.
    #[inline]
    pub(crate) unsafe fn compare(a: *const u8, b: *const u8, n: usize) -> c_int {
        /// The sign of `x - y`.
        fn sign(x: u64, y: u64) -> c_int {
            match x.cmp(&y) {
                std::cmp::Ordering::Less => -1,
                std::cmp::Ordering::Equal => 0,
                std::cmp::Ordering::Greater => 1,
            }
        }
        // SAFETY (whole body): every read is within the first `n` bytes of
        // `a` and `b`, with unaligned loads.
        unsafe {
            // Runs are compared as big-endian numbers whose digits are
            // their bytes.
            let word = |p: *const u8, i: usize| u64::from_be(p.add(i).cast::<u64>().read_unaligned());
            if n < 8 {
                // Two overlapping 4-byte halves, or up to three bytes.
                let digits = |p: *const u8| -> u64 {
                    if n >= 4 {
                        u64::from(u32::from_be(p.cast::<u32>().read_unaligned())) << 32
                            | u64::from(u32::from_be(p.add(n - 4).cast::<u32>().read_unaligned()))
                    } else if n >= 1 {
                        u64::from(*p) << 16 | u64::from(*p.add(n / 2)) << 8 | u64::from(*p.add(n - 1))
                    } else {
                        0
                    }
                };
                return sign(digits(a), digits(b));
            }
            let mut i = 0;
            while i + 8 <= n {
                let (x, y) = (word(a, i), word(b, i));
                if x != y {
                    return sign(x, y);
                }
                i += 8;
            }
            if i < n {
                // The last word overlaps bytes already found equal.
                return sign(word(a, n - 8), word(b, n - 8));
            }
            0
        }
    }

    #[cfg(target_env = "musl")]
    mod exports {
        use super::c_int;
        use std::ffi::c_void;

        // SAFETY (each): the C contracts of these functions are the
        // callers' guarantees of `copy`, `fill` and `compare`. Not inlined:
        // the whole program is one LTO module, and `memcmp` inlined into
        // every sort and comparison made the binary 170 KB larger.
        #[unsafe(no_mangle)]
        #[inline(never)]
        unsafe extern "C" fn memcpy(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void {
            unsafe { super::copy(d.cast(), s.cast(), n) };
            d
        }

        #[unsafe(no_mangle)]
        #[inline(never)]
        unsafe extern "C" fn memmove(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void {
            unsafe { super::copy(d.cast(), s.cast(), n) };
            d
        }

        #[unsafe(no_mangle)]
        #[inline(never)]
        unsafe extern "C" fn memset(d: *mut c_void, c: c_int, n: usize) -> *mut c_void {
            // C converts the value to unsigned char: its low byte.
            unsafe { super::fill(d.cast(), c.to_le_bytes()[0], n) };
            d
        }

        #[unsafe(no_mangle)]
        #[inline(never)]
        unsafe extern "C" fn memcmp(a: *const c_void, b: *const c_void, n: usize) -> c_int {
            unsafe { super::compare(a.cast(), b.cast(), n) }
        }

        #[unsafe(no_mangle)]
        #[inline(never)]
        unsafe extern "C" fn bcmp(a: *const c_void, b: *const c_void, n: usize) -> c_int {
            unsafe { super::compare(a.cast(), b.cast(), n) }
        }
    }

    #[cfg(test)]
    mod tests {
        /// Every length up to 300 (each size class and its edges, and the
        /// string instructions beyond), at every offset of source and
        /// destination within 16 bytes, apart and overlapping either way,
        /// against a copy made through a separate buffer.
        #[test]
        fn copy_moves_what_a_plain_copy_moves() {
            let base: Vec<u8> = (0..700u32).map(|i| (i.wrapping_mul(151) ^ (i >> 3)).to_le_bytes()[0]).collect();
            for n in 0..=300 {
                let ni = isize::try_from(n).expect("small");
                for so in 0..16 {
                    for gap in [-ni - 3, -40, -17, -16, -9, -1, 0, 1, 7, 16, 33, ni + 5] {
                        let src: usize = 20 + so;
                        let Some(dst) = src.checked_add_signed(gap) else { continue };
                        if dst + n > base.len() || src + n > base.len() {
                            continue;
                        }
                        let mut buf = base.clone();
                        let mut want = base.clone();
                        let part = base[src..src + n].to_vec();
                        want[dst..dst + n].copy_from_slice(&part);
                        // SAFETY: both ranges lie inside `buf`.
                        unsafe { super::copy(buf.as_mut_ptr().add(dst), buf.as_ptr().add(src), n) };
                        assert!(buf == want, "n {n} src {src} dst {dst}");
                    }
                }
            }
        }

        #[test]
        fn fill_sets_exactly_the_run() {
            for n in 0..=300 {
                for off in 0..16 {
                    let mut buf = vec![0x5au8; 340];
                    let mut want = buf.clone();
                    want[off..off + n].fill(0xa7);
                    // SAFETY: the run lies inside `buf`.
                    unsafe { super::fill(buf.as_mut_ptr().add(off), 0xa7, n) };
                    assert!(buf == want, "n {n} off {off}");
                }
            }
        }

        /// Equal runs, and runs differing in one byte at every position
        /// (above and below, so the sign is checked both ways, with bytes
        /// above 0x7f to catch a signed comparison).
        #[test]
        fn compare_orders_like_slices() {
            let a: Vec<u8> = (0..80u32).map(|i| (i * 37 + 11).to_le_bytes()[0]).collect();
            for n in 0..=80 {
                // SAFETY (each call): both runs lie inside their vectors.
                assert_eq!(unsafe { super::compare(a.as_ptr(), a.clone().as_ptr(), n) }, 0, "n {n}");
                for at in 0..n {
                    for delta in [1u8, 0x80, 0xff] {
                        let mut b = a.clone();
                        b[at] = b[at].wrapping_add(delta);
                        let want = a[..n].cmp(&b[..n]) as i32;
                        let got = unsafe { super::compare(a.as_ptr(), b.as_ptr(), n) };
                        assert_eq!(got.signum(), want, "n {n} at {at} delta {delta}");
                        let back = unsafe { super::compare(b.as_ptr(), a.as_ptr(), n) };
                        assert_eq!(back.signum(), -want, "n {n} at {at} delta {delta}");
                    }
                    // A later byte moved the other way must not count.
                    for later in at + 1..n.min(at + 20) {
                        let mut b = a.clone();
                        b[at] = b[at].wrapping_add(1);
                        b[later] = b[later].wrapping_sub(1);
                        let want = a[..n].cmp(&b[..n]) as i32;
                        let got = unsafe { super::compare(a.as_ptr(), b.as_ptr(), n) };
                        assert_eq!(got.signum(), want, "n {n} at {at} later {later}");
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
