//! What a parsed workflow file holds in memory, for the weights of the workflow cache
//! (`workflow::loader::BYTES_FACTOR` and `TEMPLATE_BYTES`): parses files of short
//! templates, long templates and no templates with a counting allocator, and prints the
//! bytes each keeps (and the peak while parsing) next to the loader's estimate.
//!
//! Run: `cargo bench -p stage-host --bench workflow_memory`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use serde_json::{Map, Value, json};
use stage_host::workflow::definition::template_sources;
use stage_host::workflow::loader::estimated_weight;
use stage_host::workflow::{StepSpec, parse};

/// The system allocator, counting live bytes and their peak.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(bytes: isize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(pointer, layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        grew(size as isize - layout.size() as isize);
        unsafe { System.realloc(pointer, layout, size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A kind of file: its name, how many fields its body has, and the value of field `i`.
type Shape = (&'static str, usize, fn(usize) -> Value);

fn main() {
    let catalog = vec![StepSpec::new("response", &["body"], &["status", "headers"])];
    let shapes: [Shape; 3] = [
        ("short templates", 20_000, |i| json!(format!("{{{{ input.n }}}}-{i}"))),
        ("long templates", 200, |_| json!(format!("{{{{ input.n }}}} {}", "some text ".repeat(200)))),
        ("no templates", 20_000, |i| json!(format!("plain text number {i}"))),
    ];
    for (shape, fields, value) in shapes {
        let body: Map<String, Value> = (0..fields).map(|i| (format!("f{i}"), value(i))).collect();
        let text =
            json!({ "version": 1, "workflows": { "w": { "steps": [{ "response": { "body": body } }] } } }).to_string();
        // What the template sandbox answers, made here by the same engine in process.
        let checker = stage_templates::Checker::new();
        let checks = template_sources(text.as_bytes())
            .into_iter()
            .map(|(source, mode)| {
                let checked = checker.check(&source, mode);
                ((source, mode), checked)
            })
            .collect();
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let file = parse(text.as_bytes(), &catalog, checks).expect("a valid file");
        let kept = LIVE.load(Ordering::Relaxed) - before;
        let peak = PEAK.load(Ordering::Relaxed) - before;
        let estimate = estimated_weight(text.len(), &file);
        println!(
            "{shape} ({fields} fields): file {} B, kept {kept} B ({:.0}x), peak {peak} B, estimated {estimate} B ({:.2}x kept)",
            text.len(),
            kept as f64 / text.len() as f64,
            estimate as f64 / kept as f64,
        );
        drop(file);
    }
}
