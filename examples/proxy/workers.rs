//! The threads that serve connections. Each runs its own current-thread runtime, so that a
//! connection's task, timers and sockets stay on one thread and no wake-up crosses to another;
//! each accepts on its own socket of every listen address (`SO_REUSEPORT`), and the kernel
//! spreads new clients over them, as HAProxy's threads and NGINX's workers with `reuseport`
//! do. Against tokio's multi-threaded runtime (`benches/proxy.sh`; benches/README.md, "What was
//! tried"): in storms of 5,000 clients at once, p99 0.64–0.94× and CPU per connection
//! 0.88–0.95× (six runs), two accept loops taking the wave in parallel; under steady load, CPU
//! 0.98–0.99× (medians of 15 and 6 runs) and p99 1.02–1.18×, since no worker takes over
//! another's clients.

use std::io;
use std::num::NonZeroUsize;

use tokio::runtime::{Builder, Handle};

/// The runtimes connections are served on; each listen address is bound once for each.
pub struct Workers(Vec<Handle>);

impl Workers {
    /// One for each CPU the process may use: the default number of workers.
    pub fn per_cpu() -> NonZeroUsize {
        std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
    }

    /// `count` threads, each running until the process exits.
    pub fn threads(count: NonZeroUsize) -> io::Result<Self> {
        let start_one = |n: usize| {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            let handle = runtime.handle().clone();
            std::thread::Builder::new()
                .name(format!("worker-{n}"))
                .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
            Ok(handle)
        };
        (0..count.get()).map(start_one).collect::<io::Result<_>>().map(Self)
    }

    /// The runtime this is called in, alone.
    #[cfg(test)]
    pub fn current() -> Self {
        Self(vec![Handle::current()])
    }

    pub fn count(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Handle> {
        self.0.iter()
    }
}
