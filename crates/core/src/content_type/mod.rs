//! Which Cochl.Sense content type to send for an uploaded S3 object.
//!
//! Cochl.Sense needs a content type with every request (docs/cochl-contract.md,
//! "Request contract"): one of `audio/mp3`, `audio/wav`, `audio/ogg`,
//! `application/octet-stream` (the model auto-detects the format) or raw PCM
//! described by `audio/x-raw; rate=..; format=..; channels=..`. S3 objects arrive
//! with a Content-Type header that clients often get wrong or leave generic, so
//! the decision is made here, deterministically, from three facts in this order:
//!
//! 1. the user metadata `cochl-content-type` (an explicit override),
//! 2. the object's Content-Type header when it names a specific audio type,
//! 3. the key's extension.
//!
//! Anything that cannot be sent is a [`ContentTypeRejection`] with a stable
//! machine code and a reason a user can act on.
//!
//! One file per concern: `pcm_format.rs` is the table of raw PCM sample formats,
//! `raw_pcm.rs` parses the parameters of `audio/x-raw`, `cochl_type.rs` is the
//! closed set of values Cochl accepts with their aliases, and `resolve.rs` makes
//! the decision from an object's facts.

mod cochl_type;
mod pcm_format;
mod raw_pcm;
mod resolve;
#[cfg(test)]
mod testing;

pub use cochl_type::{CochlContentType, ParseContentTypeError};
pub use pcm_format::{ByteOrder, PcmFormat, SampleEncoding};
pub use raw_pcm::{parse_raw_pcm, PcmParamsError, PcmSpec};
pub use resolve::{
    resolve_content_type, ContentTypeRejection, ObjectFacts, CONTENT_TYPE_METADATA_KEY,
};
