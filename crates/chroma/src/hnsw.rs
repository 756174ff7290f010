//! The hnswlib files of a vector segment: `header.bin`, `data_level0.bin` and
//! (for cosine spaces) `length.bin`.
//!
//! Only level 0 is read: element `i` sits at `i * size_data_per_element` in
//! `data_level0.bin`, with its flags byte (bit 0x01 = deleted) two bytes into
//! its link list, the vector at `offset_data` and the `u64` label at
//! `label_offset`. Elements past the header's `cur_element_count` are
//! preallocated garbage and never read.

use crate::error::{ChromaError, ErrorKind, Result};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Size of `header.bin`.
const HEADER_LEN: usize = 100;
/// Bytes read at a time while scanning labels and flags.
const SCAN_CHUNK: usize = 4 << 20;
/// Deleted flag in the byte after the neighbour count.
const DELETED: u8 = 0x01;

/// The fields of `header.bin` this reader needs.
#[derive(Debug, Clone, Copy)]
struct Header {
    offset_level0: u64,
    cur_element_count: u64,
    size_data_per_element: u64,
    label_offset: u64,
    offset_data: u64,
}

/// One element of level 0, as seen by [`Hnsw::scan`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Element {
    /// Slot number in `data_level0.bin`.
    pub slot: u32,
    /// The hnswlib label (mapped to a user id by the pickle).
    pub label: u64,
    /// Marked deleted.
    pub deleted: bool,
}

/// The opened level-0 data of an HNSW index with at least one element.
#[derive(Debug)]
pub(crate) struct Hnsw {
    header: Header,
    dimension: usize,
    data: File,
    data_path: PathBuf,
    /// `length.bin`, opened only for cosine spaces.
    lengths: Option<(File, PathBuf)>,
}

impl Hnsw {
    /// Open the index in `dir`; None when it holds no element (or no
    /// `header.bin` at all: never flushed). `cosine` opens `length.bin`.
    pub fn open(dir: &Path, cosine: bool) -> Result<Option<Hnsw>> {
        let header_path = dir.join("header.bin");
        let Some(header) = read_header(&header_path)? else {
            return Ok(None);
        };
        if header.cur_element_count == 0 {
            return Ok(None);
        }
        let data_path = dir.join("data_level0.bin");
        let data = open_sized(
            &data_path,
            header.cur_element_count * header.size_data_per_element,
        )?;
        let lengths = if cosine {
            let path = dir.join("length.bin");
            Some((open_sized(&path, header.cur_element_count * 4)?, path))
        } else {
            None
        };
        let dimension = ((header.label_offset - header.offset_data) / 4) as usize;
        Ok(Some(Hnsw {
            header,
            dimension,
            data,
            data_path,
            lengths,
        }))
    }

    /// Vector dimension implied by the layout.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// Number of elements (`cur_element_count`).
    pub fn elements(&self) -> u64 {
        self.header.cur_element_count
    }

    /// `data_level0.bin`, for error messages.
    pub fn data_path(&self) -> &Path {
        &self.data_path
    }

    /// Call `f` for every element, reading labels and flags in large chunks.
    pub fn scan(&self, mut f: impl FnMut(Element)) -> Result<()> {
        let size = self.header.size_data_per_element as usize;
        let per_chunk = (SCAN_CHUNK / size).max(1);
        let count = self.header.cur_element_count as usize;
        let mut buf = Vec::new();
        for first in (0..count).step_by(per_chunk) {
            let n = per_chunk.min(count - first);
            buf.resize(n * size, 0);
            self.read_at(&self.data, &self.data_path, &mut buf, (first * size) as u64)?;
            for (i, element) in buf.chunks_exact(size).enumerate() {
                f(self.element(first + i, element));
            }
        }
        Ok(())
    }

    fn element(&self, slot: usize, bytes: &[u8]) -> Element {
        let flags = bytes[self.header.offset_level0 as usize + 2];
        let at = self.header.label_offset as usize;
        let label = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        Element {
            slot: slot as u32,
            label,
            deleted: flags & DELETED != 0,
        }
    }

    /// Read the vector of `slot` into `out`, de-normalised for cosine spaces.
    pub fn vector(&self, slot: u32, out: &mut Vec<f32>) -> Result<()> {
        let mut bytes = vec![0u8; self.dimension * 4];
        let at = u64::from(slot) * self.header.size_data_per_element + self.header.offset_data;
        self.read_at(&self.data, &self.data_path, &mut bytes, at)?;
        out.clear();
        out.extend(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))),
        );
        if let Some((file, path)) = &self.lengths {
            let mut norm = [0u8; 4];
            self.read_at(file, path, &mut norm, u64::from(slot) * 4)?;
            let norm = f32::from_le_bytes(norm);
            out.iter_mut().for_each(|v| *v *= norm);
        }
        Ok(())
    }

    fn read_at(&self, file: &File, path: &Path, buf: &mut [u8], at: u64) -> Result<()> {
        file.read_exact_at(buf, at).map_err(|e| {
            ChromaError::io(
                e,
                &format!("reading {} bytes at offset {at}", buf.len()),
                path,
            )
        })
    }
}

/// Read and check `header.bin`; None when the file does not exist.
fn read_header(path: &Path) -> Result<Option<Header>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ChromaError::io(e, "reading the HNSW header", path)),
    };
    parse_header(&bytes)
        .map(Some)
        .map_err(|message| ChromaError::new(ErrorKind::Corrupt, message).with_file(path))
}

fn parse_header(bytes: &[u8]) -> std::result::Result<Header, String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!(
            "HNSW header is {} bytes long, expected {HEADER_LEN} (truncated)",
            bytes.len()
        ));
    }
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let header = Header {
        offset_level0: u64_at(4),
        cur_element_count: u64_at(20),
        size_data_per_element: u64_at(28),
        label_offset: u64_at(36),
        offset_data: u64_at(44),
    };
    check_header(&header).map(|()| header)
}

fn check_header(h: &Header) -> std::result::Result<(), String> {
    let layout_ok = h.offset_level0 + 4 <= h.offset_data
        && h.offset_data < h.label_offset
        && (h.label_offset - h.offset_data) % 4 == 0
        && h.label_offset
            .checked_add(8)
            .is_some_and(|end| end <= h.size_data_per_element);
    if !layout_ok {
        return Err(format!(
            "impossible HNSW element layout (offset_data {}, label_offset {}, size_data_per_element {})",
            h.offset_data, h.label_offset, h.size_data_per_element
        ));
    }
    if h.cur_element_count > u64::from(u32::MAX)
        || h.cur_element_count
            .checked_mul(h.size_data_per_element)
            .is_none()
    {
        return Err(format!("impossible element count {}", h.cur_element_count));
    }
    Ok(())
}

/// Open `path` and check it holds at least `needed` bytes.
fn open_sized(path: &Path, needed: u64) -> Result<File> {
    let file = File::open(path).map_err(|e| ChromaError::io(e, "opening an HNSW file", path))?;
    let len = file
        .metadata()
        .map_err(|e| ChromaError::io(e, "reading the file size", path))?
        .len();
    if len < needed {
        return Err(ChromaError::new(
            ErrorKind::Corrupt,
            format!("file is {len} bytes long but the HNSW header announces {needed} bytes of elements (truncated)"),
        )
        .with_file(path));
    }
    Ok(file)
}
