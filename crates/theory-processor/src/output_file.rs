//! [`OutputFile`]: a large output hashed by the caller while a thread of its own writes it.

use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

use theory_protocol::CidHasher;

use crate::{OutputBody, OutputItem};

/// Bytes gathered before they are handed to the writer thread.
const BLOCK_BYTES: usize = 1 << 20;

/// Blocks handed over and not yet written, at most: the memory an [`OutputFile`] holds is about
/// this many blocks, whatever the output's size.
const BLOCKS_IN_FLIGHT: usize = 4;

/// A large output written to a file and hashed as it is written, so it is read once (to be
/// sent) instead of twice. Write it as any [`std::io::Write`], then [`OutputFile::finish`].
///
/// The caller's thread hashes each block while a thread of the file's own writes the one
/// before it, so producing a large output uses two cores, not one; the bytes written are
/// held at most a few MiB at a time. An output under 1 MiB is written by the caller at
/// [`OutputFile::finish`], without a thread.
///
/// ```no_run
/// # fn example(context: &theory_processor::Context) -> std::io::Result<theory_processor::OutputItem> {
/// use std::io::Write as _;
/// let mut file = theory_processor::OutputFile::create(context.scratch_dir()?.join("big.bin"))?;
/// file.write_all(b"...")?;
/// file.finish("big.bin", "application/octet-stream")
/// # }
/// ```
pub struct OutputFile {
    path: PathBuf,
    hasher: CidHasher,
    /// The block being filled.
    block: Vec<u8>,
    /// The file, until the writer thread starts and takes it.
    file: Option<File>,
    writer: Option<Writer>,
}

/// The thread that writes the blocks, and the channels to and from it.
struct Writer {
    blocks: mpsc::SyncSender<Vec<u8>>,
    /// Each written block comes back to be filled again, or the error that stopped the thread.
    written: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    /// Blocks handed over and not yet back.
    in_flight: usize,
    /// Blocks made so far (at most [`BLOCKS_IN_FLIGHT`] + 1).
    allocated: usize,
    thread: Option<JoinHandle<()>>,
}

impl OutputFile {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: impl Into<PathBuf>) -> std::io::Result<OutputFile> {
        let path = path.into();
        let file = File::create(&path)?;
        Ok(OutputFile {
            path,
            hasher: CidHasher::new(),
            block: Vec::with_capacity(BLOCK_BYTES),
            file: Some(file),
            writer: None,
        })
    }

    /// Writes every byte still held and returns the file as an output at `relpath`, with the
    /// CID of every byte written.
    pub fn finish(
        mut self,
        relpath: impl Into<String>,
        mime: impl Into<String>,
    ) -> std::io::Result<OutputItem> {
        self.flush()?;
        if let Some(mut writer) = self.writer.take() {
            drop(writer.blocks);
            if let Some(thread) = writer.thread.take() {
                thread.join().map_err(|_| std::io::Error::other("the output writer panicked"))?;
            }
        }
        Ok(OutputItem {
            relpath: relpath.into(),
            body: OutputBody::HashedFile {
                path: std::mem::take(&mut self.path),
                cid: self.hasher.finalize(),
                size_bytes: self.hasher.size_bytes(),
            },
            mime: mime.into(),
        })
    }

    /// Hands the full block to the writer thread (starting it the first time) and takes an
    /// empty one back, waiting for one when [`BLOCKS_IN_FLIGHT`] are being written.
    fn hand_over(&mut self) -> std::io::Result<()> {
        if self.writer.is_none() {
            let file = self.file.take().ok_or_else(|| std::io::Error::other("file gone"))?;
            self.writer = Some(Writer::start(file)?);
        }
        let writer = self.writer.as_mut().expect("started above");
        let next = if writer.allocated <= BLOCKS_IN_FLIGHT {
            writer.allocated += 1;
            Vec::with_capacity(BLOCK_BYTES)
        } else {
            writer.take_written()?
        };
        let full = std::mem::replace(&mut self.block, next);
        writer.send(full)
    }
}

impl Writer {
    fn start(mut file: File) -> std::io::Result<Writer> {
        let (blocks, to_write) = mpsc::sync_channel::<Vec<u8>>(BLOCKS_IN_FLIGHT);
        let (done, written) = mpsc::sync_channel(BLOCKS_IN_FLIGHT + 1);
        let thread = std::thread::Builder::new().name("output-writer".into()).spawn(move || {
            for mut block in to_write {
                let result = file.write_all(&block).map(|()| {
                    block.clear();
                    block
                });
                let failed = result.is_err();
                if done.send(result).is_err() || failed {
                    return;
                }
            }
        })?;
        Ok(Writer { blocks, written, in_flight: 0, allocated: 1, thread: Some(thread) })
    }

    fn send(&mut self, block: Vec<u8>) -> std::io::Result<()> {
        if self.blocks.send(block).is_err() {
            return Err(self.stopped());
        }
        self.in_flight += 1;
        Ok(())
    }

    /// The next block written, or the error that stopped the thread.
    fn take_written(&mut self) -> std::io::Result<Vec<u8>> {
        let Ok(written) = self.written.recv() else {
            return Err(self.stopped());
        };
        let block = written?;
        self.in_flight -= 1;
        Ok(block)
    }

    /// The error the thread stopped on: the one it sent back, behind any blocks it wrote.
    fn stopped(&mut self) -> std::io::Error {
        while let Ok(written) = self.written.try_recv() {
            if let Err(error) = written {
                return error;
            }
        }
        std::io::Error::other("the output writer stopped")
    }
}

impl Drop for OutputFile {
    /// Dropped without [`OutputFile::finish`] (a handler that gave up): what was written still
    /// reaches the file, as a `BufWriter`'s would, and the writer thread is gone before the
    /// drop returns. Errors are the dropper's to ignore.
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
        if let Some(mut writer) = self.writer.take() {
            drop(writer.blocks);
            if let Some(thread) = writer.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

impl std::fmt::Debug for OutputFile {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("OutputFile")
            .field("path", &self.path)
            .field("size_bytes", &self.hasher.size_bytes())
            .finish_non_exhaustive()
    }
}

impl std::io::Write for OutputFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let take = bytes.len().min(BLOCK_BYTES - self.block.len());
        self.block.extend_from_slice(&bytes[..take]);
        self.hasher.update(&bytes[..take]);
        if self.block.len() == BLOCK_BYTES {
            self.hand_over()?;
        }
        Ok(take)
    }

    /// Waits until every byte written so far is in the file.
    fn flush(&mut self) -> std::io::Result<()> {
        match (&mut self.writer, &mut self.file) {
            (None, Some(file)) => {
                file.write_all(&self.block)?;
                self.block.clear();
                Ok(())
            }
            (Some(_), _) => {
                if !self.block.is_empty() {
                    self.hand_over()?;
                }
                let writer = self.writer.as_mut().expect("matched above");
                while writer.in_flight > 0 {
                    let block = writer.take_written()?;
                    drop(block);
                    writer.allocated -= 1;
                }
                Ok(())
            }
            (None, None) => Err(std::io::Error::other("the output file is closed")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use theory_protocol::Cid;

    use super::*;

    fn pattern(size: usize) -> Vec<u8> {
        (0..size).map(|index| (index * 31 % 251) as u8).collect()
    }

    /// Writes `bytes` in pieces of `piece` bytes and checks the file and its CID.
    fn written_in_pieces(bytes: &[u8], piece: usize) {
        let folder = tempfile::tempdir().expect("temp dir");
        let path = folder.path().join("out.bin");
        let mut file = OutputFile::create(&path).expect("create");
        for part in bytes.chunks(piece) {
            file.write_all(part).expect("write");
        }
        let item = file.finish("out.bin", "application/octet-stream").expect("finish");
        let OutputBody::HashedFile { path: written, cid, size_bytes } = item.body else {
            panic!("not a hashed file: {:?}", item.body);
        };
        assert_eq!(written, path);
        assert_eq!(size_bytes, bytes.len() as u64);
        assert_eq!(cid, Cid::of(bytes));
        assert!(std::fs::read(&path).expect("read back") == bytes, "the file differs");
    }

    #[test]
    fn a_small_output_is_written_whole_and_hashed() {
        written_in_pieces(b"", 1);
        written_in_pieces(&pattern(1000), 7);
    }

    #[test]
    fn a_large_output_is_written_in_order_across_blocks_and_more_blocks_than_in_flight() {
        // 9 blocks and a bit, in pieces that straddle every block boundary.
        written_in_pieces(&pattern(9 * BLOCK_BYTES + 12_345), 300_007);
        written_in_pieces(&pattern(3 * BLOCK_BYTES), BLOCK_BYTES);
    }

    #[test]
    fn flush_puts_every_byte_so_far_in_the_file_and_writing_goes_on() {
        let folder = tempfile::tempdir().expect("temp dir");
        let path = folder.path().join("out.bin");
        let bytes = pattern(2 * BLOCK_BYTES + 10);
        let mut file = OutputFile::create(&path).expect("create");
        file.write_all(&bytes).expect("write");
        file.flush().expect("flush");
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), bytes.len() as u64);
        file.write_all(&bytes).expect("write after flush");
        let item = file.finish("out.bin", "application/octet-stream").expect("finish");
        let OutputBody::HashedFile { cid, .. } = item.body else { panic!("not a hashed file") };
        assert_eq!(cid, Cid::of(&[bytes.clone(), bytes].concat()));
    }

    #[test]
    fn an_output_file_dropped_unfinished_still_holds_every_byte_written() {
        let folder = tempfile::tempdir().expect("temp dir");
        let path = folder.path().join("out.bin");
        let bytes = pattern(3 * BLOCK_BYTES + 77);
        let mut file = OutputFile::create(&path).expect("create");
        file.write_all(&bytes).expect("write");
        drop(file);
        assert!(std::fs::read(&path).expect("read back") == bytes, "bytes lost on drop");
    }

    #[test]
    fn a_write_that_fails_on_the_writer_thread_fails_the_writer_of_the_output() {
        // /dev/full takes the open and fails every write with ENOSPC.
        let mut file = OutputFile::create("/dev/full").expect("open /dev/full");
        let block = pattern(BLOCK_BYTES);
        let failed = (0..2 * BLOCKS_IN_FLIGHT + 2)
            .map(|_| file.write_all(&block))
            .find_map(Result::err)
            .or_else(|| file.flush().err())
            .expect("a write to /dev/full failed somewhere");
        assert_eq!(failed.raw_os_error(), Some(28), "{failed}");
    }
}
