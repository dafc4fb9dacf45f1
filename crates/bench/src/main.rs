//! `halo-bench`: the performance figures in the README, measured over a generated dataset.
//!
//! ```text
//! cargo run --release -p halo-bench -- [--data FILE] [--bytes N] [--runs N] [--only SECTION]
//! ```
//!
//! It generates the dataset when FILE does not exist (a seeded ~1 GB file by default, the
//! size of the targets in the issues), then measures, each as the best of `--runs` runs:
//! a fresh index build (with peak anonymous memory, which excludes the input file's
//! mapped pages), loading a built index, an overview, an indexed count, a dataset-wide regex
//! count, and `halo --help` when a release binary is present. Speed lives here, never in
//! timed tests.

mod stages;

use std::path::{Path, PathBuf};

/// The allocator the `halo` binary uses, so the figures are the ones users get.
#[global_allocator]
static ALLOCATOR: halo_allocator::Allocator = halo_allocator::Allocator;
halo_allocator::tune_for_batch_work_before_main!();

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use halo_index::{Dataset, NoProgress, OpenOptions};
use halo_query::{ScanBudget, TraceFilters};

struct Args {
    data: PathBuf,
    bytes: u64,
    runs: usize,
    /// Measure only this section (`index`, `queries`, `gzip`, `stages`, `help`), e.g. under
    /// a profiler.
    only: Option<String>,
}

const SECTIONS: [&str; 5] = ["index", "queries", "gzip", "stages", "help"];

impl Args {
    fn wants(&self, section: &str) -> bool {
        self.only.as_deref().is_none_or(|o| o == section)
    }
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        data: std::env::temp_dir().join("halo-bench-1g.jsonl"),
        bytes: 1_000_000_000,
        runs: 3,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--data" => args.data = PathBuf::from(value()?),
            "--bytes" => args.bytes = value()?.parse().map_err(|e| format!("--bytes: {e}"))?,
            "--runs" => args.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--only" => {
                let section = value()?;
                if !SECTIONS.contains(&section.as_str()) {
                    return Err(format!(
                        "--only: unknown section {section:?}; one of {}",
                        SECTIONS.join(", ")
                    ));
                }
                args.only = Some(section);
            }
            "-h" | "--help" => {
                println!(
                    "usage: halo-bench [--data FILE] [--bytes N] [--runs N] [--only {}]",
                    SECTIONS.join("|")
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// Samples RssAnon (heap and other anonymous memory, not file-backed pages) while alive.
struct AnonPeak {
    peak_kb: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn rss_anon_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

impl AnonPeak {
    fn start() -> AnonPeak {
        let peak_kb = Arc::new(AtomicU64::new(rss_anon_kb()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak_kb.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_anon_kb(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        AnonPeak {
            peak_kb,
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak_kb.load(Ordering::Relaxed).max(rss_anon_kb())
    }
}

/// CPU time this process has used so far (user and system, all threads), from
/// `/proc/self/stat`; `None` where that is not available.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the whole line, in clock ticks (100 a
    // second on Linux).
    let ticks = fields
        .get(11..13)?
        .iter()
        .map(|t| t.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    Some(Duration::from_millis(ticks * 10))
}

/// How many cores were busy on average while `f` ran (`None` where CPU time cannot be
/// read), with its wall time.
fn busy<T>(f: impl FnOnce() -> T) -> (Duration, Option<f64>, T) {
    let (cpu, wall) = (cpu_time(), Instant::now());
    let v = f();
    let wall = wall.elapsed();
    let cores = cpu_time().zip(cpu).map(|(after, before)| {
        after.saturating_sub(before).as_secs_f64() / wall.as_secs_f64().max(1e-9)
    });
    (wall, cores, v)
}

/// "N.NN cores busy", or nothing where that cannot be measured.
fn cores_busy(cores: Option<f64>) -> String {
    cores.map_or(String::new(), |c| format!("{c:.2} cores busy"))
}

fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed());
        last = Some(v);
    }
    (best, last.expect("at least one run"))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn generate(path: &Path, bytes: u64) -> Result<(), String> {
    eprintln!(
        "generating {} (~{} MB, seed 1)...",
        path.display(),
        bytes / 1_000_000
    );
    let config = halo_testkit::generate::GeneratorConfig {
        target_bytes: Some(bytes),
        seed: 1,
        ..Default::default()
    };
    let out = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| e.to_string())?);
    halo_testkit::generate::write_dataset(
        &config,
        halo_testkit::generate::OutputFormat::Canonical,
        out,
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// Gzip input: indexing a .gz (inflate + index) against inflating alone, on the whole
/// dataset (compressed once, beside it, at the default level).
fn gzip_figures(data: &Path, runs: usize) -> Result<(), String> {
    let mut name = data.as_os_str().to_owned();
    name.push(".gz");
    let gz = PathBuf::from(name);
    if !gz.exists() {
        eprintln!("compressing {} once...", data.display());
        let tmp = gz.with_extension("gz.tmp");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&tmp).map_err(|e| e.to_string())?,
            flate2::Compression::default(),
        );
        let mut src = std::fs::File::open(data).map_err(|e| e.to_string())?;
        std::io::copy(&mut src, &mut enc).map_err(|e| e.to_string())?;
        enc.finish().map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &gz).map_err(|e| e.to_string())?;
    }
    // Inflating alone and indexing take turns, so that a machine whose speed drifts (a
    // shared VM's does, by 10-20% over minutes) slows both sides of each ratio alike: each
    // run of an index build is paired with the inflate run just before it.
    let index_dir = std::env::temp_dir().join("halo-bench-gz-index");
    let halo = release_halo();
    let cli_dir = std::env::temp_dir().join("halo-bench-cli-index");
    let mut inflated = 0u64;
    let mut in_process = Pairs::default();
    let mut new_process = Pairs::default();
    let mut index_cores = (Duration::MAX, None);
    for _ in 0..runs.max(1) {
        let (inflate, n) = inflate_alone(&gz);
        inflated = n;
        let options = OpenOptions {
            index_dir: Some(index_dir.clone()),
            force_rebuild: true,
            ..Default::default()
        };
        let (wall, cores, built) =
            // Dropping the dataset is part of the build's cost, as it was in the figures.
            busy(|| Dataset::open(std::slice::from_ref(&gz), &options, &NoProgress).map(drop));
        built.map_err(|e| e.to_string())?;
        in_process.add(inflate, wall);
        if wall < index_cores.0 {
            index_cores = (wall, cores);
        }
        if halo.exists() {
            let (inflate, _) = inflate_alone(&gz);
            new_process.add(inflate, cli_index_once(&halo, &gz, &cli_dir)?);
        }
    }
    let _ = std::fs::remove_dir_all(&cli_dir);
    // The build's own inflater, alone: 4 MB chunks ending on line breaks, checkpoints
    // taken, buffers recycled. What the build adds to inflating is parsing, not this.
    let (chunked, _) = best(runs, || {
        let mut chunks =
            halo_ingest::InflatingChunks::open(&gz, 4 << 20, |_| true).expect("the .gz opens");
        let pool = chunks.pool();
        for chunk in chunks.by_ref() {
            halo_ingest::InflatingChunks::recycle(&pool, chunk.bytes);
        }
        chunks.finish().inflated_len
    });
    let gbps = |d: Duration| inflated as f64 / 1e9 / d.as_secs_f64();
    println!(
        "gzip: inflate alone {:.2} GB/s; index .gz {:.2} GB/s ({}) {}",
        gbps(in_process.best_inflate()),
        gbps(in_process.best_index()),
        in_process.ratios(),
        cores_busy(index_cores.1),
    );
    println!(
        "gzip: the build's inflater alone (4 MB chunks on line breaks, checkpoints) {:.2} GB/s",
        gbps(chunked)
    );
    if new_process.is_empty() {
        println!(
            "gzip: `halo index` (no release binary at {})",
            halo.display()
        );
    } else {
        println!(
            "gzip: `halo index` of the .gz, new process, new index: {} ({:.2} GB/s; {})",
            ms(new_process.best_index()),
            gbps(new_process.best_index()),
            new_process.ratios(),
        );
    }
    // The first query that needs random access makes the inflated copy from the
    // checkpoints, in parallel; later opens map it.
    let options = OpenOptions {
        index_dir: Some(index_dir.clone()),
        ..Default::default()
    };
    let ds = Dataset::open(std::slice::from_ref(&gz), &options, &NoProgress)
        .map_err(|e| e.to_string())?;
    let copy = ds.reports()[0].index_dir.join(halo_index::store::GZIP_COPY);
    // Viewing one trace reads its spans through the checkpoints: no copy is made.
    let some_trace = ds.traces()[ds.traces().len() / 2].trace_id.clone();
    drop(ds);
    let mut first_view = Duration::MAX;
    for _ in 0..runs.max(1) {
        let _ = std::fs::remove_file(&copy);
        let ds = Dataset::open(std::slice::from_ref(&gz), &options, &NoProgress)
            .expect("the index opens");
        // The span table loads as for a plain file; what is timed is the gzip part.
        ds.span_table(0).map_err(|e| e.to_string())?;
        let started = std::time::Instant::now();
        let view = halo_query::view_trace(
            &ds,
            &halo_query::ViewTraceArgs {
                trace_id: some_trace.clone(),
                offset: None,
                limit: None,
            },
        );
        first_view = first_view.min(started.elapsed());
        view.map_err(|e| e.to_string())?;
        assert!(!copy.exists(), "a view makes no inflated copy");
    }
    let (materialize, _) = best(runs, || {
        let _ = std::fs::remove_file(&copy);
        let ds = Dataset::open(std::slice::from_ref(&gz), &options, &NoProgress)
            .expect("the index opens");
        ds.segment_data(0).map(|d| d.bytes().len())
    });
    println!(
        "gzip: first view_trace once the span table is loaded (through checkpoints, no copy) {}; \
         first dataset-wide scan makes the inflated copy at {:.2} GB/s",
        ms(first_view),
        inflated as f64 / 1e9 / materialize.as_secs_f64(),
    );
    Ok(())
}

/// Inflating a whole `.gz` alone, as fast as this inflater goes on one core: large reads
/// into one reused buffer, nothing else done with the bytes. Returns the time and the
/// bytes inflated.
fn inflate_alone(gz: &Path) -> (Duration, u64) {
    use std::io::Read;
    let started = Instant::now();
    let mut d = flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(gz).expect("gz opens"),
    ));
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    while let Ok(k) = d.read(&mut buf) {
        if k == 0 {
            break;
        }
        total += k as u64;
    }
    (started.elapsed(), total)
}

/// Index build times, each paired with an inflate-alone time measured just before it.
#[derive(Default)]
struct Pairs {
    inflate: Vec<Duration>,
    index: Vec<Duration>,
}

impl Pairs {
    fn add(&mut self, inflate: Duration, index: Duration) {
        self.inflate.push(inflate);
        self.index.push(index);
    }

    fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn best_inflate(&self) -> Duration {
        self.inflate.iter().copied().min().unwrap_or_default()
    }

    fn best_index(&self) -> Duration {
        self.index.iter().copied().min().unwrap_or_default()
    }

    /// Index speed as a share of inflate speed: best against best, and the median (with
    /// the range) of the pairs.
    fn ratios(&self) -> String {
        let share = |inflate: Duration, index: Duration| {
            inflate.as_secs_f64() / index.as_secs_f64().max(1e-9) * 100.0
        };
        let mut paired: Vec<f64> = self
            .inflate
            .iter()
            .zip(&self.index)
            .map(|(&a, &b)| share(a, b))
            .collect();
        paired.sort_by(f64::total_cmp);
        let median = match paired.len() {
            0 => 0.0,
            n if n % 2 == 1 => paired[n / 2],
            n => (paired[n / 2 - 1] + paired[n / 2]) / 2.0,
        };
        format!(
            "{:.0}% of inflate best against best; {:.0}% median of {} alternating pairs, {:.0}-{:.0}%",
            share(self.best_inflate(), self.best_index()),
            median,
            paired.len(),
            paired.first().copied().unwrap_or_default(),
            paired.last().copied().unwrap_or_default(),
        )
    }
}

fn main() {
    #[cfg(not(target_os = "linux"))]
    halo_allocator::tune_for_batch_work();
    if let Err(e) = run() {
        eprintln!("halo-bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    if !args.data.exists() {
        generate(&args.data, args.bytes)?;
    }
    let size = std::fs::metadata(&args.data)
        .map_err(|e| e.to_string())?
        .len();
    let index_dir = std::env::temp_dir().join("halo-bench-index");
    let paths = vec![args.data.clone()];
    let open = |force: bool| {
        let options = OpenOptions {
            index_dir: Some(index_dir.clone()),
            force_rebuild: force,
            ..Default::default()
        };
        Dataset::open(&paths, &options, &NoProgress).map_err(|e| e.to_string())
    };
    // Warm the page cache so the figures are about halo, not the disk.
    // Streamed, so the bench does not hold the file on its own heap.
    if let Ok(mut f) = std::fs::File::open(&args.data) {
        let _ = std::io::copy(&mut f, &mut std::io::sink());
    }

    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "dataset: {} ({:.2} GB), {} cores",
        args.data.display(),
        size as f64 / 1e9,
        cores
    );
    if args.wants("index") {
        let mut build_best = Duration::MAX;
        let mut peak = 0;
        let mut build_cores = None;
        for _ in 0..args.runs.max(1) {
            let probe = AnonPeak::start();
            let (wall, cores, built) = busy(|| open(true).map(drop));
            built?;
            if wall < build_best {
                (build_best, build_cores) = (wall, cores);
            }
            peak = peak.max(probe.finish());
        }
        println!(
            "index build       {:>10}  {:.2} GB/s  peak anon memory {} MB  {}",
            ms(build_best),
            size as f64 / 1e9 / build_best.as_secs_f64(),
            peak / 1024,
            cores_busy(build_cores)
        );
        if let Some(cli) = cli_index_time(&args.data, args.runs)? {
            println!(
                "`halo index`, new process, new index {:>10}  {:.2} GB/s",
                ms(cli),
                size as f64 / 1e9 / cli.as_secs_f64(),
            );
        }
    }
    if args.wants("queries") {
        query_figures(&args, size, open)?;
    }
    if args.wants("gzip") {
        gzip_figures(&args.data, args.runs)?;
    }
    if args.wants("stages") {
        stages::stage_figures(&args.data, args.runs)?;
    }
    if args.wants("help") {
        help_figure();
    }
    Ok(())
}

/// Loading a built index and the queries over it (building it first if needed).
fn query_figures(
    args: &Args,
    size: u64,
    open: impl Fn(bool) -> Result<Dataset, String>,
) -> Result<(), String> {
    let (load, ds) = best(args.runs, || open(false));
    let ds = ds?;
    println!("traces {}, spans {}", ds.traces().len(), ds.span_count());
    println!("load built index  {:>10}", ms(load));
    // The span tables are loaded on first use (SQL, diagnosis): timed on a fresh dataset
    // each run, without the dataset's own open.
    let mut span_load = Duration::MAX;
    for _ in 0..args.runs.max(1) {
        let fresh = open(false)?;
        let t = Instant::now();
        for s in 0..fresh.segment_count() {
            fresh.span_table(s).map_err(|e| e.to_string())?;
        }
        span_load = span_load.min(t.elapsed());
    }
    println!("load span tables  {:>10}", ms(span_load));
    let budget = ScanBudget {
        time: Duration::from_secs(600),
    };
    let (t, _) = best(args.runs, || {
        halo_query::overview(&ds, &TraceFilters::default(), budget)
    });
    println!("overview          {:>10}", ms(t));
    let errors = TraceFilters {
        has_errors: Some(true),
        ..Default::default()
    };
    let (t, n) = best(args.runs.max(5), || {
        halo_query::count_traces(&ds, &errors, budget).map(|c| c.total)
    });
    println!(
        "count has_errors  {:>10}  ({} traces)",
        ms(t),
        n.map_err(|e| e.to_string())?
    );
    let regex = TraceFilters {
        regex_pattern: Some("unexpected keyword".into()),
        ..Default::default()
    };
    let (t, n) = best(args.runs, || {
        halo_query::count_traces(&ds, &regex, budget).map(|c| c.total)
    });
    println!(
        "count regex       {:>10}  {:.2} GB/s  ({} traces match 'unexpected keyword')",
        ms(t),
        size as f64 / 1e9 / t.as_secs_f64(),
        n.map_err(|e| e.to_string())?
    );
    let some_trace = ds.traces()[ds.traces().len() / 2].trace_id.clone();
    let (t, _) = best(args.runs, || {
        halo_query::view_trace(
            &ds,
            &halo_query::ViewTraceArgs {
                trace_id: some_trace.clone(),
                offset: None,
                limit: None,
            },
        )
    });
    println!("view_trace        {:>10}", ms(t));
    Ok(())
}

/// The release `halo` binary, where cargo puts it.
fn release_halo() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("release/halo")
}

/// `halo index FILE` as users run it: a new process building a new index (the index
/// directory is emptied before each run, untimed). Best of `runs`; `None` without a
/// release binary.
///
/// In-process builds (the other figures) run with an allocator already warmed by the
/// previous run, and rebuild over the previous index, deleting it in the background;
/// a new process pays for every page it touches once, and deletes nothing.
fn cli_index_time(file: &Path, runs: usize) -> Result<Option<Duration>, String> {
    let halo = release_halo();
    if !halo.exists() {
        return Ok(None);
    }
    let dir = std::env::temp_dir().join("halo-bench-cli-index");
    let mut best = Duration::MAX;
    for _ in 0..runs.max(1) {
        best = best.min(cli_index_once(&halo, file, &dir)?);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Some(best))
}

/// One `halo index FILE` by the binary `halo` into the emptied directory `dir`, timed.
fn cli_index_once(halo: &Path, file: &Path, dir: &Path) -> Result<Duration, String> {
    let _ = std::fs::remove_dir_all(dir);
    let started = Instant::now();
    let out = std::process::Command::new(halo)
        .arg("index")
        .arg(file)
        .arg("--index-dir")
        .arg(dir)
        .arg("-q")
        .output()
        .map_err(|e| format!("{}: {e}", halo.display()))?;
    let took = started.elapsed();
    if !out.status.success() {
        return Err(format!(
            "halo index {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(took)
}

/// `halo --help` of a release binary, when one has been built.
fn help_figure() {
    let halo = release_halo();
    if halo.exists() {
        let (t, _) = best(10, || {
            std::process::Command::new(&halo).arg("--help").output()
        });
        println!("halo --help       {:>10}", ms(t));
    } else {
        println!(
            "halo --help       (no release binary at {})",
            halo.display()
        );
    }
}
