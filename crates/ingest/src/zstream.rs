//! A small safe wrapper around zlib's inflate stream (zlib-rs, through its zlib-compatible
//! API), for the two things flate2 does not expose: stopping at deflate block boundaries,
//! and resuming raw deflate data mid-stream from a bit offset and a 32 KiB window. Together
//! they make zran-style checkpoints possible (see `checkpoints.rs`).

use std::mem::MaybeUninit;

use libz_rs_sys as z;

/// How the stream's bytes are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// A gzip member: header, deflate data, CRC-32 and length, all checked.
    Gzip,
    /// Bare deflate data, as when resuming from a checkpoint inside a member.
    Raw,
}

impl Framing {
    fn window_bits(self) -> i32 {
        match self {
            Framing::Gzip => 16 + 15,
            Framing::Raw => -15,
        }
    }
}

/// What one call to [`Inflater::inflate`] did.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// Input bytes taken (some of their bits may still be held unused: see `held_bits`).
    pub(crate) consumed: usize,
    /// Output bytes written.
    pub(crate) produced: usize,
    /// The gzip member (or the raw deflate data) ended.
    pub(crate) stream_end: bool,
    /// Why inflating cannot go on (corrupt data); what was produced before it still counts.
    pub(crate) error: Option<String>,
    data_type: i32,
}

impl Step {
    /// Whether the stream stopped between two deflate blocks, with more blocks to come:
    /// the only places where inflating can be resumed from a checkpoint.
    pub(crate) fn between_blocks(&self) -> bool {
        self.data_type & 128 != 0 && self.data_type & 64 == 0
    }

    /// Bits of the consumed input that the inflater holds but has not used yet.
    pub(crate) fn held_bits(&self) -> u64 {
        (self.data_type & 63) as u64
    }
}

/// An inflate stream. Boxed because zlib's state points back at the stream.
pub(crate) struct Inflater {
    strm: Box<z::z_stream>,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("total_in", &self.strm.total_in)
            .field("total_out", &self.strm.total_out)
            .finish()
    }
}

// SAFETY: the stream owns its state exclusively and holds no pointers into caller memory
// between calls (`inflate` sets and clears them).
unsafe impl Send for Inflater {}

impl Inflater {
    /// A new stream expecting `framing`.
    pub(crate) fn new(framing: Framing) -> Result<Inflater, String> {
        let mut strm = Box::new(z::z_stream::default());
        // SAFETY: `strm` is a valid, default (allocator-less) stream; the version string and
        // struct size are the library's own.
        let ret = unsafe {
            z::inflateInit2_(
                &mut *strm,
                framing.window_bits(),
                z::zlibVersion(),
                std::mem::size_of::<z::z_stream>() as i32,
            )
        };
        let inflater = Inflater { strm };
        inflater.check(ret)?;
        Ok(inflater)
    }

    /// Starts over with `framing`, keeping the allocated state (e.g. for the next member).
    pub(crate) fn reset(&mut self, framing: Framing) -> Result<(), String> {
        // SAFETY: the stream was initialised by `new`.
        let ret = unsafe { z::inflateReset2(&mut *self.strm, framing.window_bits()) };
        self.check(ret)
    }

    /// Feeds the low `bits` bits of `value` before the next input byte (resuming mid-byte).
    pub(crate) fn prime(&mut self, bits: u32, value: u8) -> Result<(), String> {
        // SAFETY: the stream was initialised by `new`.
        let ret = unsafe { z::inflatePrime(&mut *self.strm, bits as i32, i32::from(value)) };
        self.check(ret)
    }

    /// Sets the window that back-references of a resumed raw stream reach into.
    pub(crate) fn set_window(&mut self, window: &[u8]) -> Result<(), String> {
        // SAFETY: the pointer and length describe `window`, which outlives the call.
        let ret = unsafe {
            z::inflateSetDictionary(&mut *self.strm, window.as_ptr(), window.len() as u32)
        };
        self.check(ret)
    }

    /// Inflates from `input` into `output`; with `stop_between_blocks`, returns at every
    /// deflate block boundary so the caller can take a checkpoint there.
    pub(crate) fn inflate(
        &mut self,
        input: &[u8],
        output: &mut [MaybeUninit<u8>],
        stop_between_blocks: bool,
    ) -> Step {
        let avail_in = input.len().min(u32::MAX as usize) as u32;
        let avail_out = output.len().min(u32::MAX as usize) as u32;
        self.strm.next_in = input.as_ptr();
        self.strm.avail_in = avail_in;
        self.strm.next_out = output.as_mut_ptr().cast();
        self.strm.avail_out = avail_out;
        let flush = if stop_between_blocks {
            z::Z_BLOCK
        } else {
            z::Z_NO_FLUSH
        };
        // SAFETY: next_in/avail_in and next_out/avail_out describe the two live slices;
        // zlib writes only within `output` and reads only within `input`.
        let ret = unsafe { z::inflate(&mut *self.strm, flush) };
        let step = Step {
            consumed: (avail_in - self.strm.avail_in) as usize,
            produced: (avail_out - self.strm.avail_out) as usize,
            stream_end: ret == z::Z_STREAM_END,
            // A buffer error only means no progress was possible with what was given.
            error: match ret {
                z::Z_OK | z::Z_STREAM_END | z::Z_BUF_ERROR => None,
                other => Some(self.message(other)),
            },
            data_type: self.strm.data_type,
        };
        self.strm.next_in = std::ptr::null();
        self.strm.avail_in = 0;
        self.strm.next_out = std::ptr::null_mut();
        self.strm.avail_out = 0;
        step
    }

    fn check(&self, ret: i32) -> Result<(), String> {
        if ret == z::Z_OK {
            Ok(())
        } else {
            Err(self.message(ret))
        }
    }

    fn message(&self, ret: i32) -> String {
        if self.strm.msg.is_null() {
            return format!("zlib error {ret}");
        }
        // SAFETY: zlib sets `msg` to a static NUL-terminated string.
        unsafe { std::ffi::CStr::from_ptr(self.strm.msg) }
            .to_string_lossy()
            .into_owned()
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: the stream was initialised by `new` and is ended once.
        unsafe {
            z::inflateEnd(&mut *self.strm);
        }
    }
}
