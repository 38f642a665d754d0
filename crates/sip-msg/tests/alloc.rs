//! Parsing the benchmark INVITE and reading its routing headers must not
//! allocate per header: at most two heap allocations in all (the header
//! vector).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

#[path = "../benches/messages.rs"]
mod messages;

/// Counts allocations made by the current thread while counting is on.
struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call unchanged to the system allocator; the
// counters are thread-local cells that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ON.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ON.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(f: impl FnOnce() -> usize) -> (usize, usize) {
    COUNT.with(|c| c.set(0));
    ON.with(|o| o.set(true));
    let r = std::hint::black_box(f());
    ON.with(|o| o.set(false));
    (COUNT.with(Cell::get), r)
}

#[test]
fn parsing_and_routing_reads_allocate_at_most_twice() {
    for (name, raw) in [
        ("INVITE", messages::INVITE),
        ("REGISTER", messages::REGISTER),
        ("200 OK", messages::OK200),
    ] {
        let (n, r) = allocations(|| messages::read_sip_msg(raw));
        assert!(r > 0);
        println!("{name}: {n} allocation(s)");
        assert!(n <= 2, "{name}: {n} allocations, expected at most 2");
        assert!(
            n >= 1,
            "{name}: the counter saw nothing, so it is not working"
        );
    }
}

#[test]
fn benchmark_messages_are_complete() {
    // Content-Length must match the body, or the benchmark would silently
    // ignore part of it.
    for raw in [messages::INVITE, messages::REGISTER, messages::OK200] {
        let m = sip_msg::Message::parse(raw).unwrap();
        assert_eq!(m.raw().len(), raw.len());
    }
}

#[test]
fn the_counter_counts() {
    // The reference parser allocates per header: the counter must see it.
    let (n, _) = allocations(|| messages::read_rsip(messages::INVITE));
    println!("rsip INVITE: {n} allocations");
    assert!(n > 20, "rsip made only {n} allocations: counter broken?");
}
