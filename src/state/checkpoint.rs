//! The checkpoint format: a readable JSON manifest plus one Arrow IPC blob
//! per stateful operator, each with a CRC32.
//!
//! ```text
//! manifest.json   format version, plan fingerprint, per stream: watermark,
//!                 offset (events accepted), ...; per operator of the graph
//!                 (by its stable id, e.g. q0/2): the watermarks of its input
//!                 edges and its output, and if it is stateful its kind, its
//!                 scalars, and the name / size / crc32 of its blob
//! q0-2.arrow ...  group keys + DataFusion accumulator state, one row per group
//! ```
//!
//! `to_bytes` packs both into one buffer (for stores that keep one value);
//! stores that keep several values (IndexedDB) can keep the manifest and
//! blobs apart. Either way, restoring checks the magic, the version, every
//! length and checksum, and the fingerprint before touching the engine.

use serde::{Deserialize, Serialize};

use crate::err;
use crate::error::Result;

/// Version of the format written by this build.
/// 2: state per operator of the graph (1: per query).
pub const FORMAT_VERSION: u32 = 2;
const MAGIC: &[u8; 8] = b"RIFFLECK";

/// What a checkpoint contains, readable as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Hash of the streams' DDL and the queries (SQL and options), in order.
    pub fingerprint: String,
    /// The writer, for humans.
    pub written_by: String,
    /// Per stream, in creation order.
    pub streams: Vec<StreamManifest>,
    /// Per operator of the graph, in creation order.
    pub operators: Vec<OperatorManifest>,
    /// Per table (`CREATE TABLE` without a watermark): the rows it held.
    #[serde(default)]
    pub tables: Vec<TableManifest>,
}

/// A table's rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableManifest {
    /// Table name.
    pub name: String,
    /// Rows held.
    pub rows: u64,
    /// The rows, as one Arrow batch in the table's schema.
    pub blob: BlobRef,
}

/// A stream's position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamManifest {
    /// Stream name.
    pub name: String,
    /// Offset: events accepted so far. Replay from here after restoring.
    pub offset: u64,
    /// Watermark in the stream's ticks.
    pub watermark: i64,
    /// Whether the stream was finished.
    pub finished: bool,
    /// Wall-clock time of the last push (idle detection).
    pub last_arrival_millis: Option<i64>,
    /// The application's own position after the last push (a WebSocket
    /// message sequence number, a log offset), if it supplied one.
    #[serde(default)]
    pub resume_token: Option<String>,
}

/// An operator's watermarks and state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorManifest {
    /// The operator's stable id, e.g. `q0/2` (node 2 of query 0).
    pub node: String,
    /// Watermark of each input edge, in the stream's ticks.
    pub input_watermarks: Vec<i64>,
    /// Watermark it last forwarded.
    pub output_watermark: i64,
    /// State kind, e.g. `window`, `session`, `updating`; none when stateless.
    pub operator: Option<String>,
    /// The operator's scalars.
    pub meta: serde_json::Value,
    /// Its state blob, if it has one.
    pub blob: Option<BlobRef>,
}

/// Where a blob is and how to check it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlobRef {
    /// Blob name, e.g. `q0-2.arrow`.
    pub name: String,
    /// Length in bytes.
    pub bytes: u64,
    /// CRC32 of the bytes.
    pub crc32: u32,
}

/// A checkpoint: manifest and blobs.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The manifest.
    pub manifest: Manifest,
    /// Blobs by name.
    pub blobs: Vec<(String, Vec<u8>)>,
}

impl Checkpoint {
    /// The manifest as JSON text.
    pub fn manifest_json(&self) -> String {
        serde_json::to_string_pretty(&self.manifest).unwrap_or_default()
    }

    /// Rebuilds a checkpoint from a manifest and its blobs, checking them.
    pub fn from_parts(manifest_json: &str, blobs: Vec<(String, Vec<u8>)>) -> Result<Self> {
        let manifest: Manifest = serde_json::from_str(manifest_json).map_err(|e| {
            err!(
                CorruptCheckpoint,
                "the checkpoint manifest is not valid: {e}"
            )
        })?;
        let checkpoint = Self { manifest, blobs };
        checkpoint.verify()?;
        Ok(checkpoint)
    }

    /// Checks the version and every blob's length and CRC32.
    pub fn verify(&self) -> Result<()> {
        if self.manifest.format_version != FORMAT_VERSION {
            return Err(err!(
                CorruptCheckpoint,
                "checkpoint format version {} is not {FORMAT_VERSION}, which this build reads",
                self.manifest.format_version
            ));
        }
        let blobs = self
            .manifest
            .operators
            .iter()
            .filter_map(|o| o.blob.as_ref());
        let tables = self.manifest.tables.iter().map(|t| &t.blob);
        for blob in blobs.chain(tables) {
            let bytes = self.blob(&blob.name)?;
            if bytes.len() as u64 != blob.bytes || crc32fast::hash(bytes) != blob.crc32 {
                return Err(err!(
                    CorruptCheckpoint,
                    "state blob '{}' is damaged (length or checksum differs from the manifest)",
                    blob.name
                ));
            }
        }
        Ok(())
    }

    /// A blob by name.
    pub fn blob(&self, name: &str) -> Result<&[u8]> {
        self.blobs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
            .ok_or_else(|| err!(CorruptCheckpoint, "state blob '{name}' is missing"))
    }

    /// Packs the checkpoint into one buffer:
    /// magic, manifest, blobs (each length-prefixed), CRC32 of all before it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let manifest = self.manifest_json();
        let mut out = Vec::with_capacity(
            64 + manifest.len()
                + self
                    .blobs
                    .iter()
                    .map(|(n, b)| n.len() + b.len() + 12)
                    .sum::<usize>(),
        );
        out.extend_from_slice(MAGIC);
        push_bytes(&mut out, manifest.as_bytes());
        out.extend_from_slice(&(self.blobs.len() as u32).to_le_bytes());
        for (name, bytes) in &self.blobs {
            push_bytes(&mut out, name.as_bytes());
            push_bytes(&mut out, bytes);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Unpacks and checks a buffer written by [`Self::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let corrupt = |what: &str| err!(CorruptCheckpoint, "not a valid Riffle checkpoint: {what}");
        if bytes.len() < MAGIC.len() + 4 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(corrupt("wrong magic bytes"));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let crc = u32::from_le_bytes(crc.try_into().map_err(|_| corrupt("truncated"))?);
        if crc32fast::hash(body) != crc {
            return Err(corrupt("checksum mismatch (truncated or modified)"));
        }
        let mut reader = Reader {
            bytes: body,
            at: MAGIC.len(),
        };
        let manifest = std::str::from_utf8(reader.bytes()?)
            .map_err(|_| corrupt("manifest is not UTF-8"))?
            .to_string();
        let count = reader.u32()?;
        let mut blobs = Vec::new();
        for _ in 0..count {
            let name = std::str::from_utf8(reader.bytes()?)
                .map_err(|_| corrupt("blob name is not UTF-8"))?
                .to_string();
            blobs.push((name, reader.bytes()?.to_vec()));
        }
        Self::from_parts(&manifest, blobs)
    }
}

fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| {
                err!(
                    CorruptCheckpoint,
                    "not a valid Riffle checkpoint: truncated"
                )
            })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = u64::from_le_bytes(self.take(8)?.try_into().unwrap_or_default());
        self.take(usize::try_from(len).unwrap_or(usize::MAX))
    }
}

/// A stable 64-bit FNV-1a hash, as hex: the plan fingerprint.
pub fn fingerprint(parts: &[String]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0u8]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}
