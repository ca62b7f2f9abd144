//! The peak resident memory of a process and its descendants together, sampled from `/proc`
//! every few milliseconds while it runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Samples a process tree's memory on a thread of its own.
pub(crate) struct Watcher {
    done: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Watcher {
    /// Starts watching the tree under `root`.
    pub(crate) fn start(root: u32) -> Watcher {
        let done = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let thread = {
            let (done, peak) = (Arc::clone(&done), Arc::clone(&peak));
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(tree_rss(root), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Watcher { done, peak, thread }
    }

    /// Stops watching; returns the peak, in bytes.
    pub(crate) fn stop(self) -> u64 {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.peak.load(Ordering::Relaxed)
    }
}

/// The resident bytes of `root` and every process under it now.
fn tree_rss(root: u32) -> u64 {
    let mut parents = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some((parent, rss)) = parent_and_rss(pid) {
                parents.push((pid, parent, rss));
            }
        }
    }
    let mut tree = vec![root];
    let mut grew = true;
    while grew {
        grew = false;
        for (pid, parent, _) in &parents {
            if tree.contains(parent) && !tree.contains(pid) {
                tree.push(*pid);
                grew = true;
            }
        }
    }
    parents.iter().filter(|(pid, ..)| tree.contains(pid)).map(|(_, _, rss)| rss).sum()
}

/// A process's parent and resident bytes, from `/proc/<pid>/stat` (fields 4 and 24).
fn parent_and_rss(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: the fields start after its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let parent = fields.get(1)?.parse().ok()?;
    let pages: u64 = fields.get(21)?.parse().ok()?;
    Some((parent, pages * 4096))
}
