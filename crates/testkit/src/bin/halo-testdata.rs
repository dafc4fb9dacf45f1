//! `halo-testdata`: writes realistic agent traces with planted failure modes.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::{CommandFactory, FromArgMatches, Parser};
use flate2::write::GzEncoder;
use flate2::Compression;
use halo_testkit::generate::{
    write_dataset, FailureMode, GeneratorConfig, ModeRates, OutputFormat,
};

/// Generate realistic agent traces (canonical JSONL or OTLP/JSON) with labelled failure modes.
#[derive(Debug, Parser)]
#[command(name = "halo-testdata", version)]
struct Cli {
    /// Number of traces to generate (ignored with --target-bytes).
    #[arg(long, default_value_t = 100)]
    traces: u64,
    /// RNG seed; identical arguments give byte-identical output.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output format: canonical (one flat span per line) or otlp (Collector file-exporter JSON).
    #[arg(long, default_value = "canonical")]
    format: OutputFormat,
    /// Gzip the output.
    #[arg(long)]
    gzip: bool,
    /// Output path (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the ground-truth labels (mode -> sorted trace ids, plus "clean") here.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Keep generating traces until this many uncompressed bytes were produced.
    #[arg(long)]
    target_bytes: Option<u64>,
    /// Override a failure-mode fraction, e.g. --rate tool_error=0.1 (repeatable).
    #[arg(long = "rate", value_name = "MODE=FRACTION")]
    rates: Vec<String>,
    /// Generate only clean traces (applied before --rate overrides).
    #[arg(long)]
    no_failures: bool,
    /// Smaller spans (for bundled example files); failure signatures are unchanged.
    #[arg(long)]
    compact: bool,
    /// Print a summary to stderr.
    #[arg(long, short)]
    verbose: bool,
    /// Instead of generating: copy this JSONL file with a fraction of its lines mutated
    /// (values of odd types and lengths, known attribute keys with odd values, damaged
    /// bytes), for robustness tests. Uses --seed and --out.
    #[arg(long, value_name = "PATH")]
    mutate: Option<PathBuf>,
    /// With --mutate: the fraction of lines to mutate.
    #[arg(long, default_value_t = 0.3, value_name = "FRACTION", value_parser = parse_fraction)]
    mutate_fraction: f64,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("halo-testdata: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    // The failure modes are listed from the generator itself, so the help never drifts.
    let modes: Vec<&str> = FailureMode::ALL.iter().map(|m| m.as_str()).collect();
    let matches = Cli::command()
        .after_help(format!(
            "Failure modes (for --rate MODE=FRACTION): {}",
            modes.join(", ")
        ))
        .get_matches();
    let cli = Cli::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    if let Some(input) = &cli.mutate {
        return write_mutated(input, &cli);
    }
    let mut rates = if cli.no_failures {
        ModeRates::none()
    } else {
        ModeRates::default()
    };
    for r in &cli.rates {
        let (m, v) = r
            .split_once('=')
            .ok_or_else(|| format!("--rate expects MODE=FRACTION, got '{r}'"))?;
        let mode: FailureMode = m.parse()?;
        let v: f64 = v
            .parse()
            .map_err(|e| format!("bad fraction in '{r}': {e}"))?;
        rates.set(mode, v);
    }
    let config = GeneratorConfig {
        traces: cli.traces,
        seed: cli.seed,
        target_bytes: cli.target_bytes,
        rates,
        compact: cli.compact,
        ..GeneratorConfig::default()
    };
    // Checked before the output file is made: a refused run leaves no empty file behind.
    if config.rates.total() > 1.0 + 1e-9 {
        return Err(format!(
            "failure-mode rates sum to {:.3}, more than 1 (lower some with --rate MODE=FRACTION)",
            config.rates.total()
        ));
    }
    let started = Instant::now();
    let sink: Box<dyn Write> = match &cli.out {
        Some(p) => {
            // `--out before/t.jsonl` makes `before/`, as a user trying `diff` would expect.
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            Box::new(File::create(p).map_err(|e| format!("{}: {e}", p.display()))?)
        }
        None => Box::new(io::stdout().lock()),
    };
    let sink = BufWriter::with_capacity(1 << 20, sink);
    let summary = if cli.gzip {
        let mut gz = GzEncoder::new(sink, Compression::new(4));
        let s = write_dataset(&config, cli.format, &mut gz).map_err(|e| e.to_string())?;
        gz.finish()
            .and_then(|mut w| w.flush())
            .map_err(|e| e.to_string())?;
        s
    } else {
        let mut w = sink;
        let s = write_dataset(&config, cli.format, &mut w).map_err(|e| e.to_string())?;
        w.flush().map_err(|e| e.to_string())?;
        s
    };
    if let Some(p) = &cli.labels {
        std::fs::write(p, summary.labels.to_json()).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    if cli.verbose {
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "halo-testdata: {} traces, {} spans, {} lines, {:.1} MB uncompressed in {:.2}s ({:.1} MB/s, {:.0} B/span, {:.1} spans/trace)",
            summary.traces,
            summary.spans,
            summary.lines,
            summary.bytes as f64 / 1e6,
            secs,
            summary.bytes as f64 / 1e6 / secs.max(1e-9),
            summary.bytes as f64 / summary.spans.max(1) as f64,
            summary.spans as f64 / summary.traces.max(1) as f64,
        );
        for m in FailureMode::ALL {
            let n = summary.labels.modes.get(&m).map(|v| v.len()).unwrap_or(0);
            eprintln!("  {:<20} {n}", m.as_str());
        }
        eprintln!("  {:<20} {}", "clean", summary.labels.clean.len());
    }
    Ok(())
}

/// `--mutate`: the input with some of its lines mutated, to `--out` or stdout.
fn write_mutated(input: &std::path::Path, cli: &Cli) -> Result<(), String> {
    let data = std::fs::read(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let mutated = halo_testkit::mutate::mutate_lines(&data, cli.seed, cli.mutate_fraction);
    match &cli.out {
        Some(p) => std::fs::write(p, mutated).map_err(|e| format!("{}: {e}", p.display())),
        None => io::stdout()
            .lock()
            .write_all(&mutated)
            .map_err(|e| e.to_string()),
    }
}

/// A fraction from 0 to 1, for clap.
fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("`{text}` is not a fraction from 0 to 1")),
    }
}
