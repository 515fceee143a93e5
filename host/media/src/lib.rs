//! Dialog media for links, done natively by the host so links need neither big
//! memories nor codecs: where a dialog's bytes are and whether they match their
//! hashes ([`source`]), probing and decoding with symphonia, plus GSM 6.10 WAV
//! which symphonia lacks ([`decode`]),
//! resampling ([`resample`]), WAV encoding ([`encode`]), the Python conserver's
//! silence rule ([`silence`]) and chunking long recordings with bounded memory
//! ([`chunk`]), all under the [`Bounds`] of the call ([`bounds`]). [`synth`]
//! makes hostile recordings for tests.

pub mod bounds;
pub mod chunk;
pub mod decode;
pub mod encode;
mod error;
mod gsm;
pub mod resample;
pub mod silence;
pub mod source;
pub mod synth;

pub use bounds::Bounds;
pub use chunk::{Chunk, ChunkRequest, Chunks, chunks, plan_cuts};
pub use decode::{Block, Decoder, ProbeInfo, probe};
pub use error::MediaError;
pub use silence::SilenceRule;
pub use source::{MediaLocation, locate, verify};
