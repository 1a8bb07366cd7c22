//! monoio-epoll-tpc: monoio, thread per core, epoll.
//!
//! monoio-tpc with monoio's `LegacyDriver` (epoll through mio) instead of io_uring: the same
//! runtime, scheduler, tasks, owned buffers, builder settings and code
//! (`server_designs::monoio_conn`), so versus monoio-tpc only the I/O model differs, and versus
//! tokio-tpc (readiness, thread per core, SO_REUSEPORT) only the runtime does.

use bench_core::settings::Profile;
use monoio::{LegacyDriver, RuntimeBuilder};
use server_designs::monoio_conn;

const DESIGN: &str = "monoio-epoll-tpc";

fn main() {
    let profile = Profile::from_env();
    let entries = monoio_conn::entries(profile);
    let settings = monoio_conn::settings(DESIGN, "legacy (epoll)", profile)
        .with("accept", "readiness, then accept")
        .with("recv", "readiness, then read into the connection's buffer");
    monoio_conn::main(DESIGN, settings, move || {
        let builder = RuntimeBuilder::<LegacyDriver>::new();
        match entries {
            Some(entries) => builder.with_entries(entries),
            None => builder,
        }
        .enable_timer()
        .build()
    });
}
