use server_designs::tokio_conn::{self, accept_loop, serve};
use tokio::task;

fn main() {
    tokio_conn::thread_per_core("tokio-tpc", |listener, protocol, counters| async move {
        accept_loop(&listener, |stream| {
            task::spawn_local(serve(stream, protocol, counters.clone()));
        })
        .await;
    });
}
