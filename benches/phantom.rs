//! Time to generate a cohort (default 40 cases) on each grid, in a release build:
//! `cargo bench --bench phantom` (`PHANTOM_BENCH_CASES=N` to change the size,
//! `PHANTOM_BENCH_GRID=brats|raw` for one grid only).

use std::time::Instant;

use glioedge::phantom::{generate_cohort, CohortOptions, GridKind, Params, Task};

fn main() {
    let cases: usize = std::env::var("PHANTOM_BENCH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let only = std::env::var("PHANTOM_BENCH_GRID").ok();
    let threads = rayon::current_num_threads();
    for (name, grid) in [("brats", GridKind::Brats), ("raw", GridKind::Raw)] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let tmp = match tempfile::tempdir() {
            Ok(t) => t,
            Err(e) => {
                eprintln!("cannot make a temporary folder: {e}");
                std::process::exit(1);
            }
        };
        let opts = CohortOptions {
            cases,
            seed: 2026,
            grid,
            task: Task::All,
            params: Params::default(),
        };
        let start = Instant::now();
        if let Err(e) = generate_cohort(tmp.path(), &opts, |_| {}) {
            eprintln!("generation failed: {e}");
            std::process::exit(1);
        }
        let secs = start.elapsed().as_secs_f64();
        let bytes: u64 = walk(tmp.path());
        println!(
            "phantom --grid {name}: {cases} cases in {secs:.1} s ({:.2} s/case, {threads} threads, {:.0} MB on disk)",
            secs / cases as f64,
            bytes as f64 / 1e6
        );
    }
}

fn walk(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                total += walk(&p);
            } else if let Ok(m) = e.metadata() {
                total += m.len();
            }
        }
    }
    total
}
