use futures_concurrency::prelude::*;
use server_designs::tokio_conn::{self, accept_stream, serve};

fn main() {
    // tokio-tpc's runtime, set up alike (docs/fairness.md).
    tokio_conn::thread_per_core(
        "tokio-tpc-structured",
        |listener, protocol, counters| async move {
            // Borrowed by every connection of the group: no reference count per connection.
            let counters = &*counters;
            accept_stream(&listener)
                .co()
                .for_each(|stream| serve(stream, protocol, counters))
                .await;
        },
    );
}
