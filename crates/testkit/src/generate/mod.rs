//! Generator of realistic agent traces with planted, labelled failure modes.
//!
//! Traces simulate a multi-app personal assistant (AppWorld-like apps: spotify, venmo,
//! gmail, file_system, phone, calendar) emitted by four services that speak different
//! attribute dialects (OpenInference with/without inference.net keys, OpenTelemetry GenAI
//! semantic conventions with/without inference.net keys). A configurable fraction of traces
//! carries exactly one planted [`FailureMode`]; [`Labels`] records the ground truth.
//!
//! ```no_run
//! use halo_testkit::generate::{write_dataset, GeneratorConfig, OutputFormat};
//! let cfg = GeneratorConfig { traces: 100, seed: 7, ..GeneratorConfig::default() };
//! let mut out = Vec::new();
//! let summary = write_dataset(&cfg, OutputFormat::Canonical, &mut out).unwrap();
//! println!("{}", summary.labels.to_json());
//! ```

mod agent;
mod content;
pub mod model;
mod write;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

pub use model::{
    AttrValue, Dialect, Service, Span, SpanEvent, SpanKind, StatusCode, Trace, SERVICES,
};
pub use write::iso_from_unix_nanos;

/// A planted failure mode. Each non-clean trace carries exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailureMode {
    /// A TOOL span fails with a templated app error ("User 17 not found").
    ToolError,
    /// The LLM calls a tool that is not among its declared tools; the TOOL span errors.
    HallucinatedTool,
    /// A TOOL span fails with a TypeError/ValidationError about its arguments.
    InvalidToolArgs,
    /// The same tool with identical arguments is called 5-12 times in a row.
    RepeatedToolLoop,
    /// The LLM refuses three or more times in one trace.
    RefusalLoop,
    /// The LLM refuses exactly once, then the run continues.
    Refusal,
    /// The run hits its turn/recursion limit (root span error marker).
    TurnExhaustion,
    /// LLM spans fail with provider errors (429, 5xx, timeout, context length, content filter).
    ProviderError,
    /// The agent claims "Done!" without doing any tool call.
    PrematureSuccess,
    /// No error status anywhere, but the run ends with a failure outcome.
    SilentFailure,
    /// One LLM or TOOL span is 25-50x slower than its typical peers.
    LatencyOutlier,
    /// One LLM span uses >= 10x the prompt tokens of typical LLM spans.
    TokenOutlier,
}

impl FailureMode {
    /// All modes, in label-file order.
    pub const ALL: [FailureMode; 12] = [
        FailureMode::ToolError,
        FailureMode::HallucinatedTool,
        FailureMode::InvalidToolArgs,
        FailureMode::RepeatedToolLoop,
        FailureMode::RefusalLoop,
        FailureMode::Refusal,
        FailureMode::TurnExhaustion,
        FailureMode::ProviderError,
        FailureMode::PrematureSuccess,
        FailureMode::SilentFailure,
        FailureMode::LatencyOutlier,
        FailureMode::TokenOutlier,
    ];

    /// The stable identifier used in label files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureMode::ToolError => "tool_error",
            FailureMode::HallucinatedTool => "hallucinated_tool",
            FailureMode::InvalidToolArgs => "invalid_tool_args",
            FailureMode::RepeatedToolLoop => "repeated_tool_loop",
            FailureMode::RefusalLoop => "refusal_loop",
            FailureMode::Refusal => "refusal",
            FailureMode::TurnExhaustion => "turn_exhaustion",
            FailureMode::ProviderError => "provider_error",
            FailureMode::PrematureSuccess => "premature_success",
            FailureMode::SilentFailure => "silent_failure",
            FailureMode::LatencyOutlier => "latency_outlier",
            FailureMode::TokenOutlier => "token_outlier",
        }
    }

    /// The default fraction of traces carrying this mode.
    pub fn default_rate(self) -> f64 {
        match self {
            FailureMode::ToolError => 0.08,
            FailureMode::HallucinatedTool => 0.03,
            FailureMode::InvalidToolArgs => 0.04,
            FailureMode::RepeatedToolLoop => 0.03,
            FailureMode::RefusalLoop => 0.02,
            FailureMode::Refusal => 0.02,
            FailureMode::TurnExhaustion => 0.02,
            FailureMode::ProviderError => 0.04,
            FailureMode::PrematureSuccess => 0.02,
            FailureMode::SilentFailure => 0.02,
            FailureMode::LatencyOutlier => 0.01,
            FailureMode::TokenOutlier => 0.01,
        }
    }
}

impl fmt::Display for FailureMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FailureMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        FailureMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = FailureMode::ALL.iter().map(|m| m.as_str()).collect();
                format!("unknown failure mode '{s}' (known: {})", known.join(", "))
            })
    }
}

/// Fraction of traces per failure mode; the remainder is clean.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeRates {
    rates: BTreeMap<FailureMode, f64>,
}

impl Default for ModeRates {
    fn default() -> Self {
        ModeRates {
            rates: FailureMode::ALL
                .into_iter()
                .map(|m| (m, m.default_rate()))
                .collect(),
        }
    }
}

impl ModeRates {
    /// All rates zero: every trace is clean.
    pub fn none() -> Self {
        ModeRates {
            rates: FailureMode::ALL.into_iter().map(|m| (m, 0.0)).collect(),
        }
    }
    /// Sets one mode's fraction (clamped to 0..=1).
    pub fn set(&mut self, mode: FailureMode, rate: f64) -> &mut Self {
        self.rates.insert(mode, rate.clamp(0.0, 1.0));
        self
    }
    /// One mode's fraction.
    pub fn get(&self, mode: FailureMode) -> f64 {
        self.rates.get(&mode).copied().unwrap_or(0.0)
    }
    /// Sum of all fractions (must be <= 1).
    pub fn total(&self) -> f64 {
        self.rates.values().sum()
    }
}

/// Output file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// One canonical flat span per line (the HALO reference input format).
    Canonical,
    /// OTLP/JSON as the OpenTelemetry Collector file exporter writes it (batched spans per line).
    Otlp,
}

impl FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "canonical" => Ok(OutputFormat::Canonical),
            "otlp" => Ok(OutputFormat::Otlp),
            _ => Err(format!("unknown format '{s}' (expected canonical or otlp)")),
        }
    }
}

/// Generator settings.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    /// Number of traces (ignored when `target_bytes` is set).
    pub traces: u64,
    /// RNG seed; the output is a pure function of the config.
    pub seed: u64,
    /// Keep generating until at least this many (uncompressed) bytes were produced.
    pub target_bytes: Option<u64>,
    /// Failure-mode fractions.
    pub rates: ModeRates,
    /// Start time of the first trace, Unix nanoseconds.
    pub start_unix_nanos: u64,
    /// Mean gap between trace starts, milliseconds (controls interleaving).
    pub mean_interarrival_ms: f64,
    /// Smaller spans for bundled example files: the system prompt is recorded only on the
    /// first LLM call, declared tools carry only their names, shorter history and tool outputs.
    /// Failure-mode signatures are unchanged.
    pub compact: bool,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        let day = write::days_from_civil(2026, 4, 21) as u64;
        GeneratorConfig {
            traces: 100,
            seed: 42,
            target_bytes: None,
            rates: ModeRates::default(),
            start_unix_nanos: (day * 86_400 + 8 * 3600) * 1_000_000_000,
            mean_interarrival_ms: 700.0,
            compact: false,
        }
    }
}

fn mix(seed: u64, salt: u64) -> u64 {
    // splitmix64 finalizer over seed and salt
    let mut z = seed
        ^ salt
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An endless, deterministic stream of traces (mode assignment in shuffled blocks so the
/// realised fractions match the configured rates closely).
#[derive(Debug)]
pub struct TraceGenerator {
    seed: u64,
    rates: ModeRates,
    block: u64,
    schedule: Vec<Option<FailureMode>>,
    index: u64,
    clock_ns: u64,
    arrival: SmallRng,
    mean_gap_ms: f64,
    compact: bool,
}

impl TraceGenerator {
    /// Creates a generator. Modes are assigned in blocks of `config.traces` (or 1000
    /// when generating to a byte target).
    pub fn new(config: &GeneratorConfig) -> Self {
        let block = if config.target_bytes.is_some() {
            1000
        } else {
            config.traces.max(1)
        };
        TraceGenerator {
            seed: config.seed,
            rates: config.rates.clone(),
            block,
            schedule: Vec::new(),
            index: 0,
            clock_ns: config.start_unix_nanos,
            arrival: SmallRng::seed_from_u64(mix(config.seed, 0xA11)),
            mean_gap_ms: config.mean_interarrival_ms,
            compact: config.compact,
        }
    }

    fn fill_schedule(&mut self) {
        let b = self.block as usize;
        let mut sched: Vec<Option<FailureMode>> = Vec::with_capacity(b);
        for m in FailureMode::ALL {
            let r = self.rates.get(m);
            let mut n = (r * b as f64).round() as usize;
            if r > 0.0 && b >= 50 {
                n = n.max(1);
            }
            n = n.min(b - sched.len());
            sched.extend(std::iter::repeat_n(Some(m), n));
        }
        sched.resize(b, None);
        let mut rng =
            SmallRng::seed_from_u64(mix(self.seed, 0x5C4E_D000 + self.index / self.block));
        sched.shuffle(&mut rng);
        sched.reverse(); // popped from the back
        self.schedule = sched;
    }

    /// Generates the next trace.
    pub fn next_trace(&mut self) -> Trace {
        if self.schedule.is_empty() {
            self.fill_schedule();
        }
        let mode = self.schedule.pop().flatten();
        let u: f64 = self.arrival.random_range(1e-6..1.0);
        self.clock_ns += (-u.ln() * self.mean_gap_ms * 1e6) as u64;
        let mut rng = SmallRng::seed_from_u64(mix(self.seed, self.index));
        self.index += 1;
        agent::simulate(&mut rng, mode, self.clock_ns, self.compact)
    }
}

impl Iterator for TraceGenerator {
    type Item = Trace;
    fn next(&mut self) -> Option<Trace> {
        Some(self.next_trace())
    }
}

/// Ground truth: trace ids per planted mode plus the clean ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels {
    /// Mode -> trace ids (sorted once [`Labels::finish`] ran).
    pub modes: BTreeMap<FailureMode, Vec<String>>,
    /// Clean trace ids (sorted once [`Labels::finish`] ran).
    pub clean: Vec<String>,
}

impl Labels {
    /// Records one trace.
    pub fn record(&mut self, trace: &Trace) {
        match trace.mode {
            Some(m) => self
                .modes
                .entry(m)
                .or_default()
                .push(trace.trace_id.clone()),
            None => self.clean.push(trace.trace_id.clone()),
        }
    }
    /// Sorts all lists and makes sure every mode has an entry.
    pub fn finish(&mut self) {
        for m in FailureMode::ALL {
            self.modes.entry(m).or_default().sort();
        }
        self.clean.sort();
    }
    /// The label file: a JSON object mapping every mode identifier (in
    /// [`FailureMode::ALL`] order) and `"clean"` to a sorted array of trace ids.
    pub fn to_json(&self) -> String {
        let mut s = String::from("{\n");
        let empty = Vec::new();
        let lists = FailureMode::ALL
            .iter()
            .map(|m| (m.as_str(), self.modes.get(m).unwrap_or(&empty)))
            .chain(std::iter::once(("clean", &self.clean)));
        for (i, (k, ids)) in lists.enumerate() {
            if i > 0 {
                s.push_str(",\n");
            }
            s.push_str(&format!("  \"{k}\": ["));
            for (j, id) in ids.iter().enumerate() {
                s.push_str(if j == 0 { "\n    \"" } else { ",\n    \"" });
                s.push_str(id);
                s.push('"');
            }
            s.push_str(if ids.is_empty() { "]" } else { "\n  ]" });
        }
        s.push_str("\n}\n");
        s
    }
}

/// What [`write_dataset`] produced.
#[derive(Debug, Clone, Default)]
pub struct GenerationSummary {
    /// Traces written.
    pub traces: u64,
    /// Spans written.
    pub spans: u64,
    /// Lines written.
    pub lines: u64,
    /// Uncompressed bytes written.
    pub bytes: u64,
    /// Ground truth.
    pub labels: Labels,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    end_ns: u64,
    seq: u64,
    svc: usize,
    bytes: Vec<u8>,
}

struct Sink<W: Write> {
    out: W,
    format: OutputFormat,
    summary: GenerationSummary,
    batch: Vec<Pending>,
    batch_target: usize,
    rng: SmallRng,
    resources: Vec<Vec<u8>>,
    scopes: Vec<Vec<u8>>,
    line: Vec<u8>,
}

impl<W: Write> Sink<W> {
    fn emit(&mut self, p: Pending) -> io::Result<()> {
        self.summary.spans += 1;
        match self.format {
            OutputFormat::Canonical => {
                self.summary.bytes += p.bytes.len() as u64;
                self.summary.lines += 1;
                self.out.write_all(&p.bytes)
            }
            OutputFormat::Otlp => {
                self.batch.push(p);
                if self.batch.len() >= self.batch_target {
                    self.flush_batch()?;
                }
                Ok(())
            }
        }
    }

    fn flush_batch(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.batch_target = self.rng.random_range(4..40);
        let mut order: Vec<usize> = Vec::new();
        for p in &self.batch {
            if !order.contains(&p.svc) {
                order.push(p.svc);
            }
        }
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(b"{\"resourceSpans\":[");
        for (i, svc) in order.iter().enumerate() {
            if i > 0 {
                line.push(b',');
            }
            line.extend_from_slice(b"{\"resource\":");
            line.extend_from_slice(&self.resources[*svc]);
            line.extend_from_slice(b",\"scopeSpans\":[{\"scope\":");
            line.extend_from_slice(&self.scopes[*svc]);
            line.extend_from_slice(b",\"spans\":[");
            let mut first = true;
            for p in self.batch.iter().filter(|p| p.svc == *svc) {
                if !first {
                    line.push(b',');
                }
                first = false;
                line.extend_from_slice(&p.bytes);
            }
            line.extend_from_slice(b"]}]}");
        }
        line.extend_from_slice(b"]}\n");
        self.batch.clear();
        self.summary.lines += 1;
        self.summary.bytes += line.len() as u64;
        self.out.write_all(line)
    }
}

/// Generates a dataset and writes it to `out` (wrap it in a `BufWriter`/`GzEncoder` as
/// needed). Spans of concurrent traces are interleaved in end-time order, as an exporter
/// would write them. Stops after `config.traces` traces, or, with `config.target_bytes`,
/// once at least that many uncompressed bytes were produced.
pub fn write_dataset<W: Write>(
    config: &GeneratorConfig,
    format: OutputFormat,
    out: W,
) -> io::Result<GenerationSummary> {
    if config.rates.total() > 1.0 + 1e-9 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "failure-mode rates sum to more than 1",
        ));
    }
    let svc_index = |s: &Service| {
        SERVICES
            .iter()
            .position(|x| std::ptr::eq(x, s))
            .unwrap_or(0)
    };
    let canon_rs: Vec<Vec<u8>> = SERVICES
        .iter()
        .map(write::canonical_resource_scope)
        .collect();
    let mut sink = Sink {
        out,
        format,
        summary: GenerationSummary::default(),
        batch: Vec::new(),
        batch_target: 16,
        rng: SmallRng::seed_from_u64(mix(config.seed, 0xBA7C)),
        resources: SERVICES.iter().map(write::otlp_resource).collect(),
        scopes: SERVICES.iter().map(write::otlp_scope).collect(),
        line: Vec::new(),
    };
    let mut heap: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
    let mut gen = TraceGenerator::new(config);
    let mut produced = 0u64;
    let mut seq = 0u64;
    let mut labels = Labels::default();
    let mut n = 0u64;
    loop {
        let done = match config.target_bytes {
            Some(t) => produced >= t,
            None => n >= config.traces,
        };
        if done {
            break;
        }
        let trace = gen.next_trace();
        n += 1;
        let start = trace.spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
        while heap.peek().is_some_and(|Reverse(p)| p.end_ns <= start) {
            if let Some(Reverse(p)) = heap.pop() {
                sink.emit(p)?;
            }
        }
        let svc = svc_index(trace.service);
        for span in &trace.spans {
            let mut bytes = Vec::with_capacity(4096);
            match format {
                OutputFormat::Canonical => {
                    write::write_canonical_span(&mut bytes, span, &canon_rs[svc])
                }
                OutputFormat::Otlp => write::write_otlp_span(&mut bytes, span),
            }
            produced += bytes.len() as u64 + if format == OutputFormat::Otlp { 12 } else { 0 };
            heap.push(Reverse(Pending {
                end_ns: span.end_ns,
                seq,
                svc,
                bytes,
            }));
            seq += 1;
        }
        labels.record(&trace);
    }
    while let Some(Reverse(p)) = heap.pop() {
        sink.emit(p)?;
    }
    sink.flush_batch()?;
    sink.out.flush()?;
    labels.finish();
    let mut summary = sink.summary;
    summary.traces = n;
    summary.labels = labels;
    Ok(summary)
}

/// Renders one span as a canonical JSONL line (with trailing newline).
pub fn canonical_line(trace: &Trace, span: &Span) -> String {
    let mut v = Vec::new();
    write::write_canonical_span(
        &mut v,
        span,
        &write::canonical_resource_scope(trace.service),
    );
    String::from_utf8_lossy(&v).into_owned()
}

/// Renders one span as an OTLP/JSON span object.
pub fn otlp_span_json(span: &Span) -> String {
    let mut v = Vec::new();
    write::write_otlp_span(&mut v, span);
    String::from_utf8_lossy(&v).into_owned()
}

#[cfg(test)]
mod failure_mode_names {
    use super::*;

    #[test]
    fn an_unknown_mode_is_refused_with_the_known_ones_listed() {
        assert_eq!(
            "tool_error".parse::<FailureMode>(),
            Ok(FailureMode::ToolError)
        );
        let err = "nope".parse::<FailureMode>().unwrap_err();
        assert!(err.contains("unknown failure mode 'nope'"), "{err}");
        for m in FailureMode::ALL {
            assert!(err.contains(m.as_str()), "{err} lacks {m}");
        }
    }
}
