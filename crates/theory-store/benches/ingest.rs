//! Ingest throughput: an output streamed into a store in 256 KiB chunks while hashed (as the
//! orchestrator's session does), against plain single-core BLAKE3 of the same bytes; 1 MiB and
//! 1 GiB, into the filesystem store and into the S3 store (s3s-fs on 127.0.0.1:9000, started by
//! `scripts/services/s3 start`); and the peak RSS of this process. The bytes are generated chunk
//! by chunk, never held whole. Run with `cargo bench -p theory-store --bench ingest`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use theory_core::{ArtifactStore, EnvSnapshot, WorldPath};
use theory_protocol::CidHasher;
use theory_store::{FsStore, S3Config, S3Store};

const CHUNK: usize = 256 * 1024;
const MIB: u64 = 1024 * 1024;

fn chunk(seed: u64) -> Bytes {
    let mut state = seed | 1;
    let mut bytes = vec![0u8; CHUNK];
    for word in bytes.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        word.copy_from_slice(&state.to_le_bytes());
    }
    Bytes::from(bytes)
}

fn chunks(size: u64) -> impl Iterator<Item = Bytes> {
    // A few distinct chunks, reused: generating bytes must not dominate the figure.
    let pool: Vec<Bytes> = (0..8).map(chunk).collect();
    (0..size / CHUNK as u64).map(move |index| pool[index as usize % pool.len()].clone())
}

fn plain_blake3(size: u64) -> Duration {
    let started = Instant::now();
    let mut hasher = blake3::Hasher::new();
    for bytes in chunks(size) {
        hasher.update(&bytes);
    }
    std::hint::black_box(hasher.finalize());
    started.elapsed()
}

async fn ingest(store: &dyn ArtifactStore, size: u64, run: usize) -> Duration {
    let path: WorldPath =
        format!("/artifacts/bench/{}-{run}/blob.bin", std::process::id()).parse().expect("path");
    let started = Instant::now();
    let mut hasher = CidHasher::new();
    let mut writer = store.begin(&path, "application/octet-stream").await.expect("begin");
    for bytes in chunks(size) {
        hasher.update(&bytes);
        writer.write(bytes).await.expect("write");
    }
    writer.commit().await.expect("commit");
    std::hint::black_box(hasher.finalize());
    let elapsed = started.elapsed();
    store.delete(&path).await.expect("delete");
    elapsed
}

fn mib_per_s(size: u64, took: Duration) -> f64 {
    size as f64 / MIB as f64 / took.as_secs_f64()
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn report(label: &str, store: &dyn ArtifactStore) {
    for (size, runs) in [(MIB, 20), (1024 * MIB, 3)] {
        let mut times = Vec::new();
        for run in 0..runs {
            times.push(ingest(store, size, run).await);
        }
        times.sort();
        let took = times[runs / 2];
        let baseline = plain_blake3(size);
        eprintln!(
            "{label}: {} MiB in {took:.2?} = {:.0} MiB/s; plain BLAKE3 {:.0} MiB/s; ratio {:.0}%; peak RSS so far {:.1} MiB",
            size / MIB,
            mib_per_s(size, took),
            mib_per_s(size, baseline),
            100.0 * baseline.as_secs_f64() / took.as_secs_f64(),
            peak_rss_mib()
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let folder = tempfile::tempdir().expect("temp dir");
    report("filesystem store", &FsStore::new(folder.path())).await;
    let env = EnvSnapshot::from_pairs([
        ("MINIO_STORAGE_ENDPOINT", "127.0.0.1:9000"),
        ("MINIO_STORAGE_ACCESS_KEY", "theory-test-access"),
        ("MINIO_STORAGE_SECRET_KEY", "theory-test-secret"),
        ("ARTIFACTS_BUCKET", "theory-test"),
    ]);
    let s3 = S3Store::new(S3Config::from_env("minio", &env).expect("config")).expect("client");
    s3.check().await.expect("s3s-fs answers on 127.0.0.1:9000 (scripts/services/s3 start)");
    report("S3 store (s3s-fs)", &s3).await;
}
