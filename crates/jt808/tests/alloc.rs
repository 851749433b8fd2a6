//! A 0x0200 report whose items are all known decodes without allocating.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use zhilu_jt808::wire::parse_hex;
use zhilu_jt808::{Body, Decoder};

struct Counting;

thread_local! {
    // Counted per thread: the test harness's own threads allocate while a
    // test runs (seen under load), and those are not the decoder's.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: the thread-local may be gone while a thread exits.
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn location_decode_allocates_nothing() {
    // Contract vector 1 (escaped: goes through the reusable buffer) and a 2019 frame (in place).
    let frames = [
        parse_hex("7E 02 00 00 26 12 34 56 78 90 12 00 7D 02 00 00 00 01 00 00 00 02 00 BA 7F 0E 07 E4 F1 1C 00 28 00 3C 00 00 18 10 15 10 10 10 01 04 00 00 00 64 02 02 00 7D 01 13 7E").unwrap(),
        parse_hex("7e02004026010000000001391234432900000000006f0000001601dc9a0707456246007b004200032501292233440202006401040000000c417e").unwrap(),
    ];
    let mut dec = Decoder::new();
    for f in &frames {
        assert!(matches!(dec.decode(f).unwrap().body, Body::Location(_)));
    }
    let before = allocs();
    for _ in 0..1000 {
        for f in &frames {
            let m = dec.decode(f).unwrap();
            assert!(matches!(m.body, Body::Location(_)));
        }
    }
    assert_eq!(allocs() - before, 0);
    let mut msg = dec.decode(&frames[0]).unwrap();
    let before = allocs();
    for _ in 0..1000 {
        for f in &frames {
            dec.decode_into(f, &mut msg).unwrap();
        }
    }
    assert_eq!(allocs() - before, 0);
}
